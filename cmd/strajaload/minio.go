package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// minioServer is a private MinIO for one run, on free loopback ports and a temp dir.
type minioServer struct {
	*child
	endpoint             string
	accessKey, secretKey string
}

// findMinio looks for the minio binary on PATH, then in $(go env GOPATH)/bin.
func findMinio() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "minio")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	return "", errors.New("minio not found on PATH or in $(go env GOPATH)/bin (./test.sh installs it; or use --store disk)")
}

func startMinio(ctx context.Context, dir string, log *slog.Logger) (*minioServer, error) {
	bin, err := findMinio()
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	m := &minioServer{endpoint: addr, accessKey: "strajaload", secretKey: "strajaload-" + hex.EncodeToString(b[:])}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "minio-data"), "--quiet",
		"--address", addr, "--console-address", console)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.accessKey, "MINIO_ROOT_PASSWORD="+m.secretKey,
		"MINIO_BROWSER=off")
	c, err := startChild("minio", cmd, filepath.Join(dir, "minio.log"), syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	m.child = c
	log.Info("starting minio", "endpoint", addr, "pid", c.pid())
	err = poll(ctx, 30*time.Second, "minio to be ready", func() (bool, error) {
		if done, err := c.exited(); done {
			return false, fmt.Errorf("%w: %s", err, c.logTail())
		}
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return m, nil
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// errTimedOut is poll's error when its timeout passed.
var errTimedOut = errors.New("timed out")

// poll calls cond every 200 ms until it holds, fails, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v waiting for %s", errTimedOut, timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}
