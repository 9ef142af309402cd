package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

// auditCommand runs `straja audit verify --config F`: it recomputes the audit trail's
// hash chain and checks it against the heads in the store. It reads only, so it may
// run beside the service.
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: want `audit verify --config FILE`")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("audit verify: --config is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	db, err := state.Open(ctx, statePath(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	n, heads, err := audit.Verify(ctx, db, st)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	fmt.Fprintf(stdout, "audit trail intact: %d entries, %d stored heads agree\n", n, heads)
	return nil
}
