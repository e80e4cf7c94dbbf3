"""Specs in the editor: the language server (``cogdsl lsp``), the JSON Schema of YAML specs (``cogdsl schema``).

    catalog.py     the registries read once: kinds, stages, tasks, optimizers, schedules, train settings
    positions.py   cogdsl's 1-based code-point columns and LSP's 0-based UTF-16 ones
    analysis.py    a text's diagnostics (cogdsl's own front end, with recovery for half-typed files) and
                   where each name, kind, parameter and stage is
    hover.py, completion.py, formatting.py   what those requests answer
    server.py      the pygls wiring (the only module that imports pygls)
    schema.py      the JSON Schema (draft 2020-12)

Nothing here validates a spec itself: the diagnostics are those ``cogdsl validate`` prints.
"""
