module github.com/trustplane/trustplane

go 1.26.8
