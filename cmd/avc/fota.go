package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fotaStatus is the status of a firmware update in avc server's HTTP API
// (server.fotaJSON).
type fotaStatus struct {
	ID         string `json:"id"`
	Endpoint   string `json:"endpoint"`
	Image      string `json:"image"`
	Method     string `json:"method"`
	URI        string `json:"uri"`
	Phase      string `json:"phase"`
	State      int    `json:"state"`
	StateName  string `json:"state_name"`
	Result     int    `json:"result"`
	ResultText string `json:"result_text"`
	Bytes      int64  `json:"bytes"`
	Total      int64  `json:"total"`
	Error      string `json:"error"`
	Final      bool   `json:"final"`
}

// fotaStreamRetries bounds how often fota reconnects to an event stream
// that ended before the update did.
const fotaStreamRetries = 5

// fotaMain runs `avc fota`: it starts a firmware update of a client
// through the HTTP API of a running `avc server`, follows its event
// stream and draws the progress on stderr until the update ends. args are
// the arguments after "fota".
//
// Flags:
//
//	-api url         base URL of the server's HTTP API (default http://127.0.0.1:8080)
//	-endpoint ep     the client to update (required)
//	-image name      the image in the server's firmware directory (default: the name of -upload)
//	-method m        pull (the device downloads) or push (the server sends) (default pull)
//	-protocol p      the scheme a pull downloads with: coap, coaps or http (default: the server's choice)
//	-upload file     upload file to the server as -image first
//	-download-only   stop once the device holds the image, without executing Update
//
// It returns nil once the device reports the new firmware running (or
// holding it, with -download-only), and an error naming the Update Result
// otherwise. -h returns flag.ErrHelp after printing the usage.
func fotaMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("avc fota", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "http://127.0.0.1:8080", "base `url` of the server's HTTP API")
	ep := fs.String("endpoint", "", "`name` of the client to update (required)")
	image := fs.String("image", "", "`name` of the image in the server's firmware directory (default: the name of -upload)")
	method := fs.String("method", "pull", "`method`: pull (the device downloads) or push (the server sends)")
	protocol := fs.String("protocol", "", "`scheme` a pull downloads with: coap, coaps or http (default: the server's choice)")
	upload := fs.String("upload", "", "`file` to upload to the server as -image first")
	downloadOnly := fs.Bool("download-only", false, "stop once the device holds the image, without executing Update")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: avc fota -endpoint ep (-image name | -upload file) [flags]\n\n"+
			"Updates a client's firmware (LwM2M object 5) through avc server's HTTP API.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("fota: unexpected arguments %q", fs.Args())
	case *ep == "":
		return errors.New("fota: -endpoint is required")
	case *image == "" && *upload == "":
		return errors.New("fota: -image or -upload is required")
	case *method != "pull" && *method != "push":
		return fmt.Errorf("fota: bad -method %q: pull or push", *method)
	case *method == "push" && *protocol != "":
		return errors.New("fota: -protocol is for pulls only")
	}
	if *image == "" {
		*image = filepath.Base(*upload)
	}
	c := &fotaClient{api: strings.TrimSuffix(*api, "/"), http: &http.Client{}}

	if *upload != "" {
		if err := c.upload(ctx, *upload, *image, stderr); err != nil {
			return err
		}
	}
	req := map[string]any{"image": *image, "method": *method, "update": !*downloadOnly}
	if *protocol != "" {
		req["protocol"] = *protocol
	}
	st, loc, err := c.start(ctx, *ep, req)
	if err != nil {
		return err
	}
	target := st.URI
	if target == "" {
		target = "/5/0/0"
	}
	fmt.Fprintf(stderr, "fota: %s: %s %s (%s) to %s\n", *ep, *method, st.Image, byteSize(st.Total), target)
	st, err = c.follow(ctx, loc, st, stderr)
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	switch st.Phase {
	case "done":
		fmt.Fprintf(stdout, "fota: %s: updated to %s: result %d, %s\n", *ep, st.Image, st.Result, st.ResultText)
		return nil
	case "downloaded":
		fmt.Fprintf(stdout, "fota: %s: holds %s, not updated (-download-only)\n", *ep, st.Image)
		return nil
	}
	msg := fmt.Sprintf("fota: %s: update failed in state %s", *ep, st.StateName)
	if st.Error != "" {
		msg += ": " + st.Error
	}
	if st.ResultText == "" || !strings.Contains(st.Error, st.ResultText) {
		msg += fmt.Sprintf("; Update Result %d: %s", st.Result, st.ResultText)
	}
	return errors.New(msg)
}

// fotaClient talks to avc server's HTTP API.
type fotaClient struct {
	api  string
	http *http.Client
}

// apiError returns the error of an answer with an unexpected status,
// with the API's {"error": ...} message when there is one.
func apiError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return fmt.Errorf("fota: %s: %s: %s", op, resp.Status, msg)
}

// upload PUTs file as image name.
func (c *fotaClient) upload(ctx context.Context, file, name string, stderr io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("fota: upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("fota: upload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.api+"/api/firmware/"+url.PathEscape(name), f)
	if err != nil {
		return fmt.Errorf("fota: upload: %w", err)
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fota: upload: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return apiError("upload "+name, resp)
	}
	var img struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&img); err != nil {
		return fmt.Errorf("fota: upload %s: bad answer: %w", name, err)
	}
	fmt.Fprintf(stderr, "fota: uploaded %s as %s (%s, sha256 %s)\n", file, name, byteSize(img.Size), img.SHA256)
	return nil
}

// start starts the update and returns its status and location.
func (c *fotaClient) start(ctx context.Context, ep string, body map[string]any) (fotaStatus, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return fotaStatus{}, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/api/clients/"+url.PathEscape(ep)+"/fota", bytes.NewReader(b))
	if err != nil {
		return fotaStatus{}, "", fmt.Errorf("fota: start: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fotaStatus{}, "", fmt.Errorf("fota: start: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fotaStatus{}, "", apiError("start on "+ep, resp)
	}
	var st fotaStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fotaStatus{}, "", fmt.Errorf("fota: start: bad answer: %w", err)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return fotaStatus{}, "", errors.New("fota: start: no Location in the answer")
	}
	return st, loc, nil
}

// follow reads the update's event stream, drawing each status, until the
// final one. A stream that breaks off is read again, after a look at the
// status.
func (c *fotaClient) follow(ctx context.Context, loc string, st fotaStatus, stderr io.Writer) (fotaStatus, error) {
	draw := func(st fotaStatus) {
		renderProgress(stderr, st.Phase, st.Bytes, st.Total)
	}
	draw(st)
	for attempt := 0; ; attempt++ {
		last, err := c.stream(ctx, loc, draw)
		if last.Final {
			return last, nil
		}
		if ctx.Err() != nil {
			return st, fmt.Errorf("fota: %w", ctx.Err())
		}
		if attempt == fotaStreamRetries {
			return st, fmt.Errorf("fota: event stream of %s: %w", loc, err)
		}
		if now, err := c.status(ctx, loc); err == nil {
			draw(now)
			if now.Final {
				return now, nil
			}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return st, fmt.Errorf("fota: %w", ctx.Err())
		}
	}
}

// stream reads the event stream at loc+"/events" until its end event,
// calling draw for every status, and returns the last status.
func (c *fotaClient) stream(ctx context.Context, loc string, draw func(fotaStatus)) (fotaStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+loc+"/events", nil)
	if err != nil {
		return fotaStatus{}, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return fotaStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fotaStatus{}, apiError("events", resp)
	}
	var last fotaStatus
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			var st fotaStatus
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data:")), &st); err != nil {
				return last, fmt.Errorf("bad event: %w", err)
			}
			last = st
			if event != "end" {
				draw(st)
			}
			if event == "end" || st.Final {
				return last, nil
			}
		case line == "":
			event = ""
		}
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	return last, io.ErrUnexpectedEOF
}

// status GETs the update's status.
func (c *fotaClient) status(ctx context.Context, loc string) (fotaStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+loc, nil)
	if err != nil {
		return fotaStatus{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fotaStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fotaStatus{}, apiError("status", resp)
	}
	var st fotaStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// progressWidth is the number of cells of the progress bar.
const progressWidth = 30

// renderProgress draws one progress line on w, over the previous one (it
// starts with a carriage return and pads the line to a fixed width): the
// phase, then, when total is known and done is not 0, a bar with the
// percentage and the byte counts.
//
//	downloading [=========>                    ]  33%  33.0 KiB / 100.0 KiB
//	updating
func renderProgress(w io.Writer, phase string, done, total int64) {
	line := phase
	if total > 0 && done > 0 {
		done = min(done, total)
		fill := int(done * progressWidth / total)
		bar := strings.Repeat("=", fill)
		if fill < progressWidth {
			bar += ">" + strings.Repeat(" ", progressWidth-fill-1)
		}
		line = fmt.Sprintf("%-11s [%s] %3d%%  %s / %s", phase, bar, done*100/total, byteSize(done), byteSize(total))
	}
	fmt.Fprintf(w, "\r%-80s", line)
}

// byteSize formats n bytes for people: "512 B", "33.0 KiB", "1.5 MiB".
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
