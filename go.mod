module upstreamd

go 1.26.8

require github.com/yuin/gopher-lua v1.1.2

require golang.org/x/crypto v0.59.0
