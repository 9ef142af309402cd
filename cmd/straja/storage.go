package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage"
)

// storageCommand runs `straja storage init`: it readies the store so evidence holds
// are enforced by the storage itself.
func storageCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "init" {
		return errors.New("storage: want `storage init --config FILE`")
	}
	fs := flag.NewFlagSet("storage init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("storage init: --config is required")
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	switch s := st.(type) {
	case *storage.S3:
		created, err := s.InitBucket(ctx)
		if err != nil {
			return fmt.Errorf("storage init: %s", configs.Redact(err.Error(), cfg))
		}
		if created {
			fmt.Fprintf(stdout, "bucket %s created with versioning and Object Lock: held footage gets S3 legal holds\n",
				cfg.Storage.S3.Bucket)
		} else {
			fmt.Fprintf(stdout, "bucket %s already has versioning and Object Lock\n", cfg.Storage.S3.Bucket)
		}
	default:
		fmt.Fprintf(stdout, "disk storage at %s is ready; straja itself refuses to delete held footage there\n",
			cfg.Storage.Disk.Path)
	}
	return nil
}
