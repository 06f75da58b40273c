// Command ceiling is the load test's yardstick: functions on the same
// Functions Framework as the shard that do the least a line server can do,
// so that `lines bench` can tell the shard's own cost from the framework's
// and the machine's.
//
//   - Constant (the default FUNCTION_TARGET) answers every request with the
//     same 50-byte body and does nothing else: its requests per second are
//     the most the framework gives on this machine, the ceiling.
//   - Reads answers GET /lines/{n} (n from 1) with the two reads any server
//     that keeps neither file in memory must make, index entries then line,
//     and nothing else: no checks of the number, the index or the data, and
//     only the ceiling's two headers. It reads FILE_REPOSITORY_FILE_PATH and
//     INDEX_FILE_PATH (whole-file index) and is the floor of the shard's
//     cost: not a server to use.
//
// It serves on PORT (default 8080).
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/lineserver/lineserver/internal/index"
)

// body is the constant answer: 50 bytes, its '\n' included.
var body = []byte("a constant body of fifty bytes for the ceiling...\n")

func init() {
	functions.HTTP("Constant", constant)
	functions.HTTP("Reads", func(w http.ResponseWriter, r *http.Request) {
		rd, err := openReads()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rd.serve(w, r)
	})
}

func constant(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{"50"}
	w.Write(body)
}

// reads holds the files of the Reads function.
type reads struct {
	data, index *os.File
	size        int64 // of the data, the end of its last line
	bufs        sync.Pool
}

var openReads = sync.OnceValues(func() (*reads, error) {
	return newReads(os.Getenv("FILE_REPOSITORY_FILE_PATH"), os.Getenv("INDEX_FILE_PATH"))
})

// openFiles opens the Reads function's files before it serves, so that a
// wrong path stops the process at once rather than failing every request.
func openFiles(target string) error {
	if target != "Reads" {
		return nil
	}
	if _, err := openReads(); err != nil {
		return fmt.Errorf("the Reads function: %w", err)
	}
	return nil
}

// newReads opens data and its index (by default data + "_index.txt").
func newReads(dataPath, indexPath string) (*reads, error) {
	data, err := os.Open(dataPath)
	if err != nil {
		return nil, err
	}
	if indexPath == "" {
		indexPath = dataPath + "_index.txt"
	}
	idx, err := os.Open(indexPath)
	if err != nil {
		return nil, err
	}
	st, err := data.Stat()
	if err != nil {
		return nil, err
	}
	rd := &reads{data: data, index: idx, size: st.Size()}
	rd.bufs.New = func() any { b := make([]byte, 4<<10); return &b }
	return rd, nil
}

func (rd *reads) serve(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/lines/"), 10, 64)
	if err != nil || n < 1 {
		http.Error(w, "not a line number", http.StatusBadRequest)
		return
	}
	var e [2 * index.EntrySize]byte
	got, err := rd.index.ReadAt(e[:], (n-1)*index.EntrySize)
	if got < index.EntrySize {
		http.Error(w, fmt.Sprint(err), http.StatusNotFound)
		return
	}
	start, err1 := index.ParseEntry(e[:index.EntrySize])
	end, err2 := rd.size, error(nil) // the last line ends the file
	if got == len(e) {
		end, err2 = index.ParseEntry(e[index.EntrySize:])
	}
	if err1 != nil || err2 != nil || end < start {
		http.Error(w, "bad entry", http.StatusInternalServerError)
		return
	}
	bp := rd.bufs.Get().(*[]byte)
	defer rd.bufs.Put(bp)
	var line []byte
	if end-start <= int64(len(*bp)) {
		line = (*bp)[:end-start]
	} else {
		line = make([]byte, end-start) // rare: the shard streams these
	}
	if _, err := rd.data.ReadAt(line, start); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(line))}
	w.Write(line)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Constant")
	}
	if err := openFiles(os.Getenv("FUNCTION_TARGET")); err != nil {
		return err
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return funcframework.Start(port)
}
