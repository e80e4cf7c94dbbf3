" cogdsl specs: *.cog files
autocmd BufRead,BufNewFile *.cog setfiletype cog
