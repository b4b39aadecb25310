package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse/gatehouse/pkg/secretgen"
)

// genSecretsCommand makes a deployment's shared_secret and cookie_secret
// once: files in a directory (docker compose's one-shot container, a
// laptop), or a Secret in the Kubernetes namespace the Job runs in. It
// keeps what already exists, so it is safe to run at every start.
func genSecretsCommand(args []string, stdout io.Writer) error {
	fs := newFlagSet("gen-secrets")
	dir := fs.String("dir", "", "write shared_secret and cookie_secret files (mode 0600) into this directory")
	kubeSecret := fs.String("kubernetes-secret", "", "create this Secret (keys SHARED_SECRET, COOKIE_SECRET) in the pod's namespace")
	namespace := fs.String("namespace", "", "the Secret's namespace (default: the pod's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case (*dir == "") == (*kubeSecret == ""):
		return errors.New("gen-secrets: give exactly one of --dir DIR or --kubernetes-secret NAME")
	case *dir != "":
		wrote, err := secretgen.EnsureFiles(*dir)
		if err != nil {
			return fmt.Errorf("gen-secrets: %w", err)
		}
		if len(wrote) == 0 {
			fmt.Fprintf(stdout, "kept the secrets in %s\n", *dir)
		}
		for _, p := range wrote {
			fmt.Fprintf(stdout, "wrote %s\n", p)
		}
		return nil
	}
	api, err := secretgen.InCluster()
	if err != nil {
		return fmt.Errorf("gen-secrets: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := api.EnsureKubernetesSecret(ctx, *namespace, *kubeSecret)
	if err != nil {
		return fmt.Errorf("gen-secrets: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "created Secret %s\n", *kubeSecret)
	} else {
		fmt.Fprintf(stdout, "kept Secret %s\n", *kubeSecret)
	}
	return nil
}
