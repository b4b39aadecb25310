package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatehouse/gatehouse/pkg/ingress"
	"github.com/gatehouse/gatehouse/pkg/logging"
)

// ingressControllerCommand runs the services of the settings file (all of
// them, or its services option) with routes from the cluster's Ingresses:
// the Kubernetes config source in place of the file's.
func ingressControllerCommand(args []string, stderr io.Writer) error {
	fs := newFlagSet("ingress-controller")
	path := configFlag(fs)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file; in-cluster credentials when empty")
	class := fs.String("ingress-class", ingress.DefaultControllerName, "spec.controller of the IngressClasses to serve")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to watch (default: all)")
	serviceDNS := fs.Bool("service-dns", false, "send traffic to each Service's cluster DNS name instead of its endpoints' addresses")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "the cluster's DNS domain")
	leaseNS := fs.String("lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease that elects the status writer (default: POD_NAMESPACE, else default)")
	leaseName := fs.String("lease-name", "gatehouse-ingress-controller", "name of that Lease")
	statusAddr := fs.String("status-addresses", "", "comma-separated IPs or host names to write to Ingress status.loadBalancer")
	statusSvc := fs.String("status-service", "", "namespace/name of the Service whose status.loadBalancer to copy to Ingress status")
	syncTimeout := fs.Duration("sync-timeout", 2*time.Minute, "how long to wait for the first listing of the cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logs := logging.NewSwitch(stderr)
	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	restCfg.UserAgent = "gatehouse-ingress-controller/" + version
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctl, err := ingress.New(ingress.Options{
		Client: client, ConfigPath: *path, Env: os.LookupEnv,
		ControllerName: *class, Namespaces: splitList(*namespaces),
		Translate:      ingress.TranslateOptions{ServiceDNS: *serviceDNS, ClusterDomain: *clusterDomain},
		LeaseNamespace: *leaseNS, LeaseName: *leaseName,
		StatusAddresses: splitList(*statusAddr), StatusService: *statusSvc,
		Logger: logs.Logger(),
	})
	if err != nil {
		return configError(*path, "settings", err)
	}
	logger := followConfigLogging(ctl, logs)
	sig := stopSignals()
	defer sig.stop()
	if err := ctl.Sync(sig.ctx, *syncTimeout); err != nil {
		return err
	}
	logger.Info("ingress controller synced", "ingress_class", *class, "routes", len(ctl.Current().Routes))
	p, err := newProcess(sig.ctx, ctl, logger)
	if err != nil {
		return err
	}
	defer p.close()
	p.runners = append(p.runners, ctl.Run)
	return p.run(sig.ctx, sig.now)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
