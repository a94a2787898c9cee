module certroute.local/tools/backend

go 1.26.0
