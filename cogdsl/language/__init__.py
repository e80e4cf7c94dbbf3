"""The language: the IR (:mod:`~cogdsl.language.spec`: Spec, Value, spans), the ``.cog`` grammar and reader
(:mod:`~cogdsl.language.parse_cog`), the YAML reader (:mod:`~cogdsl.language.parse_yaml`) and the emitter that
writes a spec back as text (:mod:`~cogdsl.language.emit`, ``cogdsl fmt``)."""
