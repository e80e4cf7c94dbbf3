" Vim / Neovim syntax for cogdsl's .cog specs (the TextMate grammar of editors/vscode, in Vim's terms).
if exists("b:current_syntax")
  finish
endif

syntax match cogComment "#.*$"
syntax region cogString start=/"/ skip=/\\./ end=/"\|$/
syntax match cogNumber "\<[-+]\=\d\+\(\.\d*\)\=\([eE][-+]\=\d\+\)\=\>"
syntax keyword cogConstant true false none
syntax keyword cogStatement cogdsl model doc input output train
syntax keyword cogWiring on by
syntax match cogWire "<-"
syntax match cogDelay "@prev\>"
syntax match cogOperator "[|+]"
syntax match cogParam "\<\h\w*\ze\s*="
syntax match cogStage "[:|+]\s*\zs\h\w*"
" a block statement: its kind, then its name
syntax match cogKind "^\s*\zs\h\w*\ze\s\+\h\w*"
syntax match cogKind ";\s*\zs\h\w*\ze\s\+\h\w*"

highlight default link cogComment Comment
highlight default link cogString String
highlight default link cogNumber Number
highlight default link cogConstant Constant
highlight default link cogStatement Keyword
highlight default link cogWiring Keyword
highlight default link cogWire Operator
highlight default link cogDelay StorageClass
highlight default link cogOperator Operator
highlight default link cogParam Identifier
highlight default link cogStage Function
highlight default link cogKind Type

let b:current_syntax = "cog"
