module github.com/certroute/certroute-challenge

go 1.22
