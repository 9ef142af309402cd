// Command straja records and relays the CCTV cameras of a site: `straja serve` runs the
// service from a config file, `straja demo` runs it against simulated cameras, and
// `straja catalog rebuild` rebuilds the catalog from storage, `straja storage init`
// creates an S3 bucket with Object Lock, `straja state`
// backs up and restores the state database, `straja user` manages users, and
// `straja cert` writes a self-signed certificate for HTTPS on a LAN without a CA.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/straja-nvr/straja/configs"
)

const usage = `usage:
  straja demo [--demo-password P] [--listen ADDR] [--data DIR] [--cameras N] [--segment-duration D] [--webrtc-udp-port P] [--webrtc-tcp-port P]
  straja serve --config FILE
  straja catalog rebuild --config FILE
  straja storage init --config FILE
  straja state backup --config FILE
  straja state list --config FILE
  straja state restore --config FILE [--from KEY]
  straja user add --config FILE --username U --role guard|admin|itc [--password-stdin]
  straja user passwd --config FILE --username U [--password-stdin]
  straja user list --config FILE
  straja user disable|enable --config FILE --username U
  straja user grant --config FILE --username U --site S | --camera C
  straja token create|revoke --config FILE --user U --name N
  straja token list --config FILE [--user U]
  straja audit verify --config FILE
  straja export --config FILE --camera ID --from T --to T -o CLIP.mp4 --reason R
  straja verify CLIP.mp4 [--manifest FILE] [--key PEM | --config FILE]
  straja keys show|rotate --config FILE
  straja retention plan --config FILE [--force]
  straja cert --hosts NAME,IP,... [--out-dir DIR] [--days N] [--force]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "straja:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch args[0] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "config file (YAML)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *path == "" {
			return errors.New("serve: --config is required")
		}
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		return serve(ctx, &Main{Config: cfg, Log: log}, stdout)
	case "demo":
		m, err := demoMain(args[1:], stderr, log)
		if err != nil {
			return err
		}
		return serve(ctx, m, stdout)
	case "catalog":
		if len(args) < 2 || args[1] != "rebuild" {
			return fmt.Errorf("catalog: want `catalog rebuild --config FILE`")
		}
		fs := flag.NewFlagSet("catalog rebuild", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "config file (YAML)")
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		if *path == "" {
			return errors.New("catalog rebuild: --config is required")
		}
		// Only the store is used: cameras' passwords need not be set.
		cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
		if err != nil {
			return err
		}
		return rebuildCatalog(ctx, cfg, stdout, stderr)
	case "state":
		return stateCommand(ctx, args[1:], stdout, stderr)
	case "storage":
		return storageCommand(ctx, args[1:], stdout, stderr)
	case "user":
		return userCommand(ctx, args[1:], stdout, stderr)
	case "token":
		return tokenCommand(ctx, args[1:], stdout, stderr)
	case "audit":
		return auditCommand(ctx, args[1:], stdout, stderr)
	case "retention":
		return retentionCommand(ctx, args[1:], stdout, stderr)
	case "cert":
		return certCommand(args[1:], stdout, stderr)
	case "export":
		return exportCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyCommand(args[1:], stdout, stderr)
	case "keys":
		return keysCommand(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// serve runs m until ctx is done.
func serve(ctx context.Context, m *Main, stdout io.Writer) error {
	m.Out = stdout
	if err := m.Run(ctx); err != nil {
		return err
	}
	// Metrics need metrics.token or metrics.listen: say where, or that they are off.
	metrics := "metrics off: set metrics.token or metrics.listen"
	switch u := m.MetricsURL(); {
	case u != "":
		metrics = "metrics at " + u
	case m.Config.Metrics.Token != "":
		metrics = "metrics at /metrics with the bearer token metrics.token"
	}
	fmt.Fprintf(stdout, "Straja is running: open %s/ (%s). Ctrl-C stops it.\n", m.URL(), metrics)
	select {
	case <-ctx.Done():
		return m.Close()
	case <-m.Done():
		err := m.Close()
		if err == nil {
			err = errors.New("recorder stopped")
		}
		return err
	}
}
