// cert-manager controller v1.18.2, wired from the root module's packages (upstream's
// cmd/controller submodule is not on the module proxy). Same flags, config file
// (ControllerConfiguration), controllers, leader election Lease, metrics (:9402) and
// healthz (:9403 /livez) servers as upstream's cmd/controller/app.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/utils/clock"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	configscheme "github.com/cert-manager/cert-manager/internal/apis/config/controller/scheme"
	defaults "github.com/cert-manager/cert-manager/internal/apis/config/controller/v1alpha1"
	"github.com/cert-manager/cert-manager/internal/apis/config/controller/validation"
	"github.com/cert-manager/cert-manager/internal/controller/feature"
	"github.com/cert-manager/cert-manager/pkg/acme/accounts"
	configv1alpha1 "github.com/cert-manager/cert-manager/pkg/apis/config/controller/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/controller"
	shimgateway "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	controllerconfigfile "github.com/cert-manager/cert-manager/pkg/controller/configfile"
	"github.com/cert-manager/cert-manager/pkg/healthz"
	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/metrics"
	"github.com/cert-manager/cert-manager/pkg/server"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
	"github.com/cert-manager/cert-manager/pkg/util/profiling"
	"github.com/cert-manager/cert-manager/symptomdx/cli"

	// controllers and issuer types register themselves (as upstream's cmd/controller/app/start.go)
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/vault"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/venafi"
)

func main() {
	scheme, _, err := configscheme.NewSchemeAndCodecs()
	if err != nil {
		panic(err)
	}
	c := &config.ControllerConfiguration{}
	cli.Defaults(scheme, &configv1alpha1.ControllerConfiguration{}, c)
	cli.Main(cli.Command{
		Name:     "controller",
		Short:    fmt.Sprintf("Automated TLS controller for Kubernetes (%s) (%s)", util.AppVersion, util.AppGitCommit),
		AddFlags: func(fs *pflag.FlagSet) { addFlags(fs, c) },
		ConfigFile: func() (configfile.ConfigFile, func()) {
			f := controllerconfigfile.New()
			return f, func() { f.Config.DeepCopyInto(c) }
		},
		Complete: func() error {
			return cli.Complete(c.FeatureGates, func() field.ErrorList { return validation.ValidateControllerConfiguration(c, nil) }, &c.Logging)
		},
		Run: func(ctx context.Context, _ []string) error { return run(ctx, c) },
	})
}

func addFlags(fs *pflag.FlagSet, c *config.ControllerConfiguration) {
	fs.StringVar(&c.APIServerHost, "master", c.APIServerHost, "Optional apiserver host address to connect to (default: autoconfiguration)")
	fs.StringVar(&c.KubeConfig, "kubeconfig", c.KubeConfig, "Paths to a kubeconfig. Only required if out-of-cluster.")
	fs.Float32Var(&c.KubernetesAPIQPS, "kube-api-qps", c.KubernetesAPIQPS, "maximum queries-per-second to the Kubernetes apiserver")
	fs.IntVar(&c.KubernetesAPIBurst, "kube-api-burst", c.KubernetesAPIBurst, "maximum burst of requests to the Kubernetes apiserver")
	fs.StringVar(&c.ClusterResourceNamespace, "cluster-resource-namespace", c.ClusterResourceNamespace, "Namespace for resources owned by cluster scoped resources such as ClusterIssuer")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "If set, limits cert-manager to this namespace and disables ClusterIssuers (default: all namespaces)")
	cli.LeaderElectionFlags(fs, &c.LeaderElectionConfig.LeaderElectionConfig)
	fs.StringSliceVar(&c.Controllers, "controllers", c.Controllers, "Controllers to enable: '*' all on-by-default ones, 'foo' only foo, '*,-foo' all but foo.\nAll controllers: "+strings.Join(defaults.AllControllers, ", "))
	fs.StringVar(&c.ACMEHTTP01Config.SolverImage, "acme-http01-solver-image", c.ACMEHTTP01Config.SolverImage, "The image of the ACME HTTP01 challenge solver pods")
	fs.StringVar(&c.ACMEHTTP01Config.SolverResourceRequestCPU, "acme-http01-solver-resource-request-cpu", c.ACMEHTTP01Config.SolverResourceRequestCPU, "CPU request of HTTP01 solver pods")
	fs.StringVar(&c.ACMEHTTP01Config.SolverResourceRequestMemory, "acme-http01-solver-resource-request-memory", c.ACMEHTTP01Config.SolverResourceRequestMemory, "Memory request of HTTP01 solver pods")
	fs.StringVar(&c.ACMEHTTP01Config.SolverResourceLimitsCPU, "acme-http01-solver-resource-limits-cpu", c.ACMEHTTP01Config.SolverResourceLimitsCPU, "CPU limit of HTTP01 solver pods")
	fs.StringVar(&c.ACMEHTTP01Config.SolverResourceLimitsMemory, "acme-http01-solver-resource-limits-memory", c.ACMEHTTP01Config.SolverResourceLimitsMemory, "Memory limit of HTTP01 solver pods")
	fs.BoolVar(&c.ACMEHTTP01Config.SolverRunAsNonRoot, "acme-http01-solver-run-as-non-root", c.ACMEHTTP01Config.SolverRunAsNonRoot, "Run HTTP01 solver pods as non-root")
	fs.StringSliceVar(&c.ACMEHTTP01Config.SolverNameservers, "acme-http01-solver-nameservers", c.ACMEHTTP01Config.SolverNameservers, "host:port DNS servers for ACME HTTP01 check requests")
	fs.BoolVar(&c.ClusterIssuerAmbientCredentials, "cluster-issuer-ambient-credentials", c.ClusterIssuerAmbientCredentials, "Whether a ClusterIssuer may use ambient credentials (environment, metadata services)")
	fs.BoolVar(&c.IssuerAmbientCredentials, "issuer-ambient-credentials", c.IssuerAmbientCredentials, "Whether an Issuer may use ambient credentials (environment, metadata services)")
	fs.StringSliceVar(&c.IngressShimConfig.DefaultAutoCertificateAnnotations, "auto-certificate-annotations", c.IngressShimConfig.DefaultAutoCertificateAnnotations, "Annotations by which an Ingress requests a certificate (ingress-shim)")
	fs.StringSliceVar(&c.IngressShimConfig.ExtraCertificateAnnotations, "extra-certificate-annotations", []string{}, "Extra annotations ingress-shim adds to Certificates")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerName, "default-issuer-name", c.IngressShimConfig.DefaultIssuerName, "Issuer name ingress-shim uses when an Ingress names none")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerKind, "default-issuer-kind", c.IngressShimConfig.DefaultIssuerKind, "Issuer kind ingress-shim uses when an Ingress names none")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerGroup, "default-issuer-group", c.IngressShimConfig.DefaultIssuerGroup, "Issuer group ingress-shim uses when an Ingress names none")
	fs.StringSliceVar(&c.ACMEDNS01Config.RecursiveNameservers, "dns01-recursive-nameservers", c.ACMEDNS01Config.RecursiveNameservers, "ip:port or https://DoH servers for DNS01 self checks")
	fs.BoolVar(&c.ACMEDNS01Config.RecursiveNameserversOnly, "dns01-recursive-nameservers-only", c.ACMEDNS01Config.RecursiveNameserversOnly, "Only query the configured recursive DNS servers for DNS01 self checks")
	fs.DurationVar(&c.ACMEDNS01Config.CheckRetryPeriod, "dns01-check-retry-period", c.ACMEDNS01Config.CheckRetryPeriod, "Wait between DNS01 and HTTP01 propagation checks")
	fs.BoolVar(&c.EnableCertificateOwnerRef, "enable-certificate-owner-ref", c.EnableCertificateOwnerRef, "Make the Certificate the owner of its Secret (deleted with it)")
	fs.BoolVar(&c.EnableGatewayAPI, "enable-gateway-api", c.EnableGatewayAPI, "Enable the Gateway API integration (needs feature gate ExperimentalGatewayAPISupport)")
	fs.StringSliceVar(&c.CopiedAnnotationPrefixes, "copied-annotation-prefixes", c.CopiedAnnotationPrefixes, "Annotation key prefixes copied from Certificate to CertificateRequest and Order ('-' excludes)")
	fs.Var(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "key=value pairs of feature gates. Options are:\n"+strings.Join(utilfeature.DefaultFeatureGate.KnownFeatures(), "\n"))
	fs.IntVar(&c.NumberOfConcurrentWorkers, "concurrent-workers", c.NumberOfConcurrentWorkers, "Number of concurrent workers of each controller")
	fs.IntVar(&c.MaxConcurrentChallenges, "max-concurrent-challenges", c.MaxConcurrentChallenges, "Maximum number of challenges 'processing' at once")
	fs.StringVar(&c.MetricsListenAddress, "metrics-listen-address", c.MetricsListenAddress, "host:port of the metrics endpoint")
	fs.BoolVar(&c.EnablePprof, "enable-profiling", c.EnablePprof, "Enable the Go profiler")
	fs.StringVar(&c.PprofAddress, "profiler-address", c.PprofAddress, "host:port of the Go profiler (/debug/pprof)")
	cli.MetricsTLSFlags(fs, &c.MetricsTLSConfig)
	fs.StringVar(&c.HealthzListenAddress, "internal-healthz-listen-address", c.HealthzListenAddress, "host:port of the healthz server (/livez)")
	fs.DurationVar(&c.LeaderElectionConfig.HealthzTimeout, "internal-healthz-leader-election-timeout", c.LeaderElectionConfig.HealthzTimeout, "Grace period after a lost lease during which /livez stays healthy")
	_ = fs.MarkHidden("internal-healthz-listen-address")
	_ = fs.MarkHidden("internal-healthz-leader-election-timeout")
	logf.AddFlags(&c.Logging, fs)
}

// enabledControllers resolves --controllers as upstream's options.EnabledControllers does.
func enabledControllers(c *config.ControllerConfiguration) sets.Set[string] {
	enabled, disabled := sets.New[string](), []string{}
	for _, n := range c.Controllers {
		switch {
		case n == "*":
			enabled.Insert(defaults.DefaultEnabledControllers...)
		case strings.HasPrefix(n, "-"):
			disabled = append(disabled, n[1:])
		default:
			enabled.Insert(n)
		}
	}
	if len(disabled) > 0 && enabled.Len() == 0 {
		enabled.Insert(defaults.DefaultEnabledControllers...)
	}
	if utilfeature.DefaultFeatureGate.Enabled(feature.ExperimentalCertificateSigningRequestControllers) {
		enabled.Insert(defaults.ExperimentalCertificateSigningRequestControllers...)
	}
	if gatewayAPI(c) {
		enabled.Insert(shimgateway.ControllerName)
	}
	if c.Namespace != "" {
		enabled.Delete(defaults.ClusterScopedControllers...)
	}
	return enabled.Delete(disabled...)
}

func gatewayAPI(c *config.ControllerConfiguration) bool {
	return c.EnableGatewayAPI && utilfeature.DefaultFeatureGate.Enabled(feature.ExperimentalGatewayAPISupport)
}

func run(rootCtx context.Context, c *config.ControllerConfiguration) error {
	rootCtx, cancel := context.WithCancel(rootCtx)
	defer cancel()
	log := logf.FromContext(rootCtx)
	g, rootCtx := errgroup.WithContext(rootCtx)

	factory, err := contextFactory(rootCtx, c)
	if err != nil {
		return err
	}
	ctx, err := factory.Build()
	if err != nil {
		return err
	}
	enabled := enabledControllers(c)
	log.Info(fmt.Sprintf("enabled controllers: %s", sets.List(enabled)))

	// metrics (plain HTTP unless --metrics-tls-* say otherwise), profiler, healthz
	certSource := cli.CertificateSource(c.MetricsTLSConfig, ctx.RESTConfig, "cert-manager")
	if certSource != nil {
		g.Go(func() error {
			if err := certSource.Start(rootCtx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		})
	}
	metricsLn, err := server.Listen("tcp", c.MetricsListenAddress, server.WithCertificateSource(certSource),
		server.WithTLSCipherSuites(c.MetricsTLSConfig.CipherSuites), server.WithTLSMinVersion(c.MetricsTLSConfig.MinTLSVersion))
	if err != nil {
		return fmt.Errorf("failed to listen on prometheus address %s: %v", c.MetricsListenAddress, err)
	}
	serve(rootCtx, g, ctx.Metrics.NewServer(metricsLn), metricsLn)
	if c.EnablePprof {
		ln, err := net.Listen("tcp", c.PprofAddress)
		if err != nil {
			return fmt.Errorf("failed to listen on profiler address %s: %v", c.PprofAddress, err)
		}
		mux := http.NewServeMux()
		profiling.Install(mux)
		serve(rootCtx, g, &http.Server{Handler: mux, ReadHeaderTimeout: 32 * time.Second}, ln)
	}
	healthzLn, err := net.Listen("tcp", c.HealthzListenAddress)
	if err != nil {
		return fmt.Errorf("failed to listen on healthz address %s: %v", c.HealthzListenAddress, err)
	}
	healthzServer := healthz.NewServer(c.LeaderElectionConfig.HealthzTimeout)
	g.Go(func() error { return healthzServer.Start(rootCtx, healthzLn) })

	elected := make(chan struct{})
	if c.LeaderElectionConfig.Enabled {
		g.Go(func() error { return leaderElection(rootCtx, c, factory, healthzServer, elected) })
	} else {
		close(elected)
	}
	select {
	case <-rootCtx.Done():
		return g.Wait()
	case <-elected:
	}

	for name, constructor := range controller.Known() {
		if !enabled.Has(name) {
			continue
		}
		iface, err := constructor(factory)
		if err != nil {
			cancel()
			return errors.Join(fmt.Errorf("error starting controller: %v", err), g.Wait())
		}
		log.V(logf.InfoLevel).Info("starting controller", "controller", name)
		g.Go(func() error { return iface.Run(c.NumberOfConcurrentWorkers, rootCtx) })
	}
	ctx.SharedInformerFactory.Start(rootCtx.Done())
	ctx.KubeSharedInformerFactory.Start(rootCtx.Done())
	ctx.HTTP01ResourceMetadataInformersFactory.Start(rootCtx.Done())
	if gatewayAPI(c) {
		ctx.GWShared.Start(rootCtx.Done())
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("error starting controller: %v", err)
	}
	log.V(logf.InfoLevel).Info("control loops exited")
	if gatewayAPI(c) {
		ctx.GWShared.Shutdown()
	}
	ctx.HTTP01ResourceMetadataInformersFactory.Shutdown()
	ctx.KubeSharedInformerFactory.Shutdown()
	ctx.SharedInformerFactory.Shutdown()
	return nil
}

// serve runs srv on ln until ctx ends, then shuts it down (5 s grace).
func serve(ctx context.Context, g *errgroup.Group, srv *http.Server, ln net.Listener) {
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx) //nolint:contextcheck
	})
	g.Go(func() error {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	})
}

func contextFactory(ctx context.Context, c *config.ControllerConfiguration) (*controller.ContextFactory, error) {
	nameservers := c.ACMEDNS01Config.RecursiveNameservers
	if len(nameservers) == 0 {
		nameservers = dnsutil.RecursiveNameservers
	}
	h := c.ACMEHTTP01Config
	var qerr error
	qty := func(name, s string) resource.Quantity {
		v, err := resource.ParseQuantity(s)
		if err != nil && qerr == nil {
			qerr = fmt.Errorf("error parsing ACMEHTTP01%s: %w", name, err)
		}
		return v
	}
	clk := clock.RealClock{}
	opts := controller.ContextOptions{
		Kubeconfig:         c.KubeConfig,
		KubernetesAPIQPS:   c.KubernetesAPIQPS,
		KubernetesAPIBurst: c.KubernetesAPIBurst,
		APIServerHost:      c.APIServerHost,
		Namespace:          c.Namespace,
		Clock:              clk,
		Metrics:            metrics.New(logf.FromContext(ctx), clk),
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverResourceRequestCPU:    qty("SolverResourceRequestCPU", h.SolverResourceRequestCPU),
			HTTP01SolverResourceRequestMemory: qty("SolverResourceRequestMemory", h.SolverResourceRequestMemory),
			HTTP01SolverResourceLimitsCPU:     qty("SolverResourceLimitsCPU", h.SolverResourceLimitsCPU),
			HTTP01SolverResourceLimitsMemory:  qty("SolverResourceLimitsMemory", h.SolverResourceLimitsMemory),
			ACMEHTTP01SolverRunAsNonRoot:      h.SolverRunAsNonRoot,
			HTTP01SolverImage:                 h.SolverImage,
			HTTP01SolverNameservers:           h.SolverNameservers,
			DNS01Nameservers:                  nameservers,
			DNS01CheckRetryPeriod:             c.ACMEDNS01Config.CheckRetryPeriod,
			DNS01CheckAuthoritative:           !c.ACMEDNS01Config.RecursiveNameserversOnly,
			AccountRegistry:                   accounts.NewDefaultRegistry(),
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: c.MaxConcurrentChallenges},
		IssuerOptions: controller.IssuerOptions{
			ClusterIssuerAmbientCredentials: c.ClusterIssuerAmbientCredentials,
			IssuerAmbientCredentials:        c.IssuerAmbientCredentials,
			ClusterResourceNamespace:        c.ClusterResourceNamespace,
		},
		IngressShimOptions: controller.IngressShimOptions{
			DefaultIssuerName:                 c.IngressShimConfig.DefaultIssuerName,
			DefaultIssuerKind:                 c.IngressShimConfig.DefaultIssuerKind,
			DefaultIssuerGroup:                c.IngressShimConfig.DefaultIssuerGroup,
			DefaultAutoCertificateAnnotations: c.IngressShimConfig.DefaultAutoCertificateAnnotations,
			ExtraCertificateAnnotations:       c.IngressShimConfig.ExtraCertificateAnnotations,
		},
		CertificateOptions: controller.CertificateOptions{EnableOwnerRef: c.EnableCertificateOwnerRef, CopiedAnnotationPrefixes: c.CopiedAnnotationPrefixes},
		ConfigOptions:      controller.ConfigOptions{EnableGatewayAPI: c.EnableGatewayAPI},
	}
	if qerr != nil {
		return nil, qerr
	}
	return controller.NewContextFactory(ctx, opts)
}

// leaderElection holds the Lease kube-system/cert-manager-controller (upstream's name and
// identity); closes elected when leading, fails when the lease is lost.
func leaderElection(ctx context.Context, c *config.ControllerConfiguration, factory *controller.ContextFactory, hz *healthz.Server, elected chan struct{}) error {
	lctx, err := factory.Build("leader-election")
	if err != nil {
		return err
	}
	id, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("error getting hostname: %v", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, c.LeaderElectionConfig.Namespace, "cert-manager-controller",
		lctx.Client.CoreV1(), lctx.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id + "-external-cert-manager-controller", EventRecorder: lctx.Recorder})
	if err != nil {
		return fmt.Errorf("error creating leader election lock: %v", err)
	}
	lost := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   c.LeaderElectionConfig.LeaseDuration,
		RenewDeadline:   c.LeaderElectionConfig.RenewDeadline,
		RetryPeriod:     c.LeaderElectionConfig.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        hz.LeaderHealthzAdaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(elected) },
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost <- errors.New("leader election lost")
				}
			},
		},
	})
	if err != nil {
		return err
	}
	le.Run(ctx)
	select {
	case err := <-lost:
		return err
	default:
		return nil
	}
}
