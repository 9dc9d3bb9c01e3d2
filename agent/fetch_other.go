//go:build wasip1 || js

package agent

import "context"

// fetcher is inert where the native driver cannot fetch over HTTP (the
// wasm module's engine is made without httpFetch, so it never asks).
type fetcher struct{ msgs chan fetchMsg }

func newFetcher(caFile string) (*fetcher, error)                   { return &fetcher{}, nil }
func (f *fetcher) run(ctx context.Context, r FetchRequest)         {}
func (f *fetcher) stop()                                           {}
func (f *fetcher) cancel()                                         {}
func (f *fetcher) setInline(func(context.Context, fetchMsg) error) {}
