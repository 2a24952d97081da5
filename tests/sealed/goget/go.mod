module socksify.test/goget

go 1.19
