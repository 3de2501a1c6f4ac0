// A goroutine panics and nobody recovers: the Go runtime prints the panic and exits with
// status 2, after the main goroutine printed what it had.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Println("before the panic")
	os.Stdout.Sync()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m map[string]int
		m["boom"] = 1 // assignment to a nil map
	}()
	<-done
	time.Sleep(time.Second)
	fmt.Println("not reached")
}
