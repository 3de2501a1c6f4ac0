// Goroutines on guest threads: channels, select, timers, sync primitives, atomics, maps, the
// garbage collector under allocation pressure, panic and recover, and os.Exit. The output does
// not depend on how goroutines interleave or how fast the machine is.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct{ id, sum int }

func producer(n int, out chan<- int) {
	for i := 0; i < n; i++ {
		out <- i
	}
	close(out)
}

func squares(in <-chan int, out chan<- result, id int, wg *sync.WaitGroup) {
	defer wg.Done()
	s := 0
	for v := range in {
		s += v * v
	}
	out <- result{id, s}
}

func mayPanic(n int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered: %v", r)
		}
	}()
	var a []int
	return errors.New(fmt.Sprint(a[n]))
}

func main() {
	// A pipeline: one producer, four consumers, fan-in.
	in := make(chan int)
	out := make(chan result, 4)
	var wg sync.WaitGroup
	go producer(1000, in)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go squares(in, out, i, &wg)
	}
	wg.Wait()
	close(out)
	total := 0
	for r := range out {
		total += r.sum
	}
	fmt.Println("pipeline", total)

	// Timers: a ticker counted to five in a select, a sleep, a timeout that fires.
	tick := time.NewTicker(time.Millisecond)
	ticks := 0
	for ticks < 5 {
		select {
		case <-tick.C:
			ticks++
		case <-time.After(10 * time.Second):
			fmt.Println("ticker stalled")
			os.Exit(1)
		}
	}
	tick.Stop()
	start := time.Now()
	time.Sleep(3 * time.Millisecond)
	never := make(chan int)
	select {
	case <-never:
		fmt.Println("impossible")
	case <-time.After(2 * time.Millisecond):
	}
	fmt.Println("ticks", ticks, "slept and timed out:", time.Since(start) >= 5*time.Millisecond)

	// sync.Once, RWMutex, atomics and a shared map.
	var once sync.Once
	var count int64
	var rw sync.RWMutex
	shared := map[string]int{}
	var wg2 sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			once.Do(func() { atomic.AddInt64(&count, 100) })
			for j := 0; j < 100; j++ {
				atomic.AddInt64(&count, 1)
				rw.Lock()
				shared[fmt.Sprintf("k%d", j%10)]++
				rw.Unlock()
				rw.RLock()
				_ = shared["k0"]
				rw.RUnlock()
			}
		}()
	}
	wg2.Wait()
	keys := make([]string, 0, len(shared))
	for k := range shared {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("count", atomic.LoadInt64(&count), "keys", strings.Join(keys, ","), "k3", shared["k3"])

	// Allocation pressure: the collector runs and what is kept survives.
	var keep [][]byte
	for i := 0; i < 4000; i++ {
		b := make([]byte, 1024)
		b[0] = byte(i)
		if i%200 == 0 {
			keep = append(keep, b)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sum := 0
	for _, b := range keep {
		sum += int(b[0])
	}
	fmt.Println("kept", len(keep), "sum", sum, "gc ran:", ms.NumGC > 0)

	fmt.Println(mayPanic(3))
	os.Exit(7)
}
