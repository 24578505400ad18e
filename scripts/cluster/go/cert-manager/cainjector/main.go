// cert-manager cainjector v1.18.2: injects CA data into webhook configurations, APIServices
// and CRDs, wired from the root module (upstream's cmd/cainjector submodule is not on the
// module proxy). Same flags, config file (CAInjectorConfiguration), Lease
// (cert-manager-cainjector-leader-election) and metrics server (:9402) as upstream's
// cmd/cainjector/app.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	cliflag "k8s.io/component-base/cli/flag"
	apireg "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	config "github.com/cert-manager/cert-manager/internal/apis/config/cainjector"
	configscheme "github.com/cert-manager/cert-manager/internal/apis/config/cainjector/scheme"
	"github.com/cert-manager/cert-manager/internal/apis/config/cainjector/validation"
	configv1alpha1 "github.com/cert-manager/cert-manager/pkg/apis/config/cainjector/v1alpha1"
	cainjectorconfigfile "github.com/cert-manager/cert-manager/pkg/cainjector/configfile"
	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
	"github.com/cert-manager/cert-manager/pkg/util/profiling"
	"github.com/cert-manager/cert-manager/symptomdx/cli"
)

func main() {
	scheme, _, err := configscheme.NewSchemeAndCodecs()
	if err != nil {
		panic(err)
	}
	c := &config.CAInjectorConfiguration{}
	cli.Defaults(scheme, &configv1alpha1.CAInjectorConfiguration{}, c)
	cli.Main(cli.Command{
		Name:     "cainjector",
		Short:    fmt.Sprintf("CA Injection Controller for Kubernetes (%s) (%s)", util.AppVersion, util.AppGitCommit),
		AddFlags: func(fs *pflag.FlagSet) { addFlags(fs, c) },
		ConfigFile: func() (configfile.ConfigFile, func()) {
			f := cainjectorconfigfile.New()
			return f, func() { f.Config.DeepCopyInto(c) }
		},
		Complete: func() error {
			return cli.Complete(c.FeatureGates, func() field.ErrorList { return validation.ValidateCAInjectorConfiguration(c, nil) }, &c.Logging)
		},
		Run: func(ctx context.Context, _ []string) error { return run(ctx, c) },
	})
}

func addFlags(fs *pflag.FlagSet, c *config.CAInjectorConfiguration) {
	fs.StringVar(&c.KubeConfig, "kubeconfig", c.KubeConfig, "Paths to a kubeconfig. Only required if out-of-cluster.")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "If set, only inject into resources of this namespace")
	cli.LeaderElectionFlags(fs, &c.LeaderElectionConfig)
	fs.BoolVar(&c.EnableDataSourceConfig.Certificates, "enable-certificates-data-source", c.EnableDataSourceConfig.Certificates, "Use cert-manager.io Certificates as CA data sources (needs the Certificate CRD)")
	fs.BoolVar(&c.EnableInjectableConfig.ValidatingWebhookConfigurations, "enable-validatingwebhookconfigurations-injectable", c.EnableInjectableConfig.ValidatingWebhookConfigurations, "Inject CA data into annotated ValidatingWebhookConfigurations")
	fs.BoolVar(&c.EnableInjectableConfig.MutatingWebhookConfigurations, "enable-mutatingwebhookconfigurations-injectable", c.EnableInjectableConfig.MutatingWebhookConfigurations, "Inject CA data into annotated MutatingWebhookConfigurations")
	fs.BoolVar(&c.EnableInjectableConfig.CustomResourceDefinitions, "enable-customresourcedefinitions-injectable", c.EnableInjectableConfig.CustomResourceDefinitions, "Inject CA data into annotated CustomResourceDefinitions")
	fs.BoolVar(&c.EnableInjectableConfig.APIServices, "enable-apiservices-injectable", c.EnableInjectableConfig.APIServices, "Inject CA data into annotated APIServices")
	fs.BoolVar(&c.EnablePprof, "enable-profiling", c.EnablePprof, "Enable the Go profiler")
	fs.StringVar(&c.PprofAddress, "profiler-address", c.PprofAddress, "host:port of the Go profiler (/debug/pprof)")
	fs.Var(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "key=value pairs of feature gates. Options are:\n"+strings.Join(utilfeature.DefaultFeatureGate.KnownFeatures(), "\n"))
	logf.AddFlags(&c.Logging, fs)
	fs.StringVar(&c.MetricsListenAddress, "metrics-listen-address", c.MetricsListenAddress, "host:port of the metrics endpoint; '0' disables it")
	cli.MetricsTLSFlags(fs, &c.MetricsTLSConfig)
}

func run(ctx context.Context, c *config.CAInjectorConfiguration) error {
	log := logf.FromContext(ctx)
	// upstream takes ctrl.GetConfigOrDie() (KUBECONFIG, in-cluster, ~/.kube/config) and so ignores
	// its own --kubeconfig flag; here the flag wins when it is set
	cfg, err := ctrl.GetConfig()
	if c.KubeConfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", c.KubeConfig)
	}
	if err != nil {
		return err
	}
	restConfig := util.RestConfigWithUserAgent(cfg, "cainjector")

	var namespaces map[string]cache.Config
	if c.Namespace != "" {
		namespaces = map[string]cache.Config{c.Namespace: {}}
	}
	metricsOpts := metricsserver.Options{BindAddress: c.MetricsListenAddress}
	certSource := cli.CertificateSource(c.MetricsTLSConfig, restConfig, "cert-manager-cainjector")
	if certSource != nil {
		suites, err := cliflag.TLSCipherSuites(c.MetricsTLSConfig.CipherSuites)
		if err != nil {
			return err
		}
		minVersion, err := cliflag.TLSVersion(c.MetricsTLSConfig.MinTLSVersion)
		if err != nil {
			return err
		}
		metricsOpts.SecureServing = true
		metricsOpts.TLSOpts = []func(*tls.Config){func(t *tls.Config) {
			t.CipherSuites, t.MinVersion, t.GetCertificate = suites, minVersion, certSource.GetCertificate
		}}
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	utilruntime.Must(apiext.AddToScheme(scheme))
	utilruntime.Must(apireg.AddToScheme(scheme))
	le := c.LeaderElectionConfig
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{ReaderFailOnMissingInformer: true, DefaultNamespaces: namespaces},
		// Secrets are read directly, not cached (memory, and no initial list of every Secret)
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		LeaderElection:                le.Enabled,
		LeaderElectionNamespace:       le.Namespace,
		LeaderElectionID:              "cert-manager-cainjector-leader-election",
		LeaderElectionReleaseOnCancel: true,
		LeaderElectionResourceLock:    resourcelock.LeasesResourceLock,
		LeaseDuration:                 &le.LeaseDuration,
		RenewDeadline:                 &le.RenewDeadline,
		RetryPeriod:                   &le.RetryPeriod,
		Metrics:                       metricsOpts,
	})
	if err != nil {
		return fmt.Errorf("error creating manager: %v", err)
	}
	if certSource != nil {
		if err := mgr.Add(certSource); err != nil {
			return err
		}
	}
	if c.EnablePprof {
		ln, err := net.Listen("tcp", c.PprofAddress)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		profiling.Install(mux)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 32 * time.Second}
		if err := mgr.Add(allReplicas(func(ctx context.Context) error {
			go func() {
				<-ctx.Done()
				shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdownCtx) //nolint:contextcheck
			}()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		})); err != nil {
			return err
		}
	}
	// with Certificates as a data source, wait (up to 5 min) for their CRD, as upstream
	if c.EnableDataSourceConfig.Certificates {
		direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
		if err != nil {
			return fmt.Errorf("failed to create client: %w", err)
		}
		err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
			err := direct.Get(ctx, types.NamespacedName{Name: "certificates.cert-manager.io"}, &apiext.CustomResourceDefinition{})
			if apierrors.IsNotFound(err) {
				log.Info("cainjector has been configured to watch certificates, but certificates.cert-manager.io CRD not found, retrying with a backoff...")
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("error retrieving certificate.cert-manager.io CRDs: %w", err)
		}
	}
	inj := c.EnableInjectableConfig
	if err := cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		Namespace:                    c.Namespace,
		EnableCertificatesDataSource: c.EnableDataSourceConfig.Certificates,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   inj.MutatingWebhookConfigurations,
			cainjector.ValidatingWebhookConfigurationName: inj.ValidatingWebhookConfigurations,
			cainjector.APIServiceName:                     inj.APIServices,
			cainjector.CustomResourceDefinitionName:       inj.CustomResourceDefinitions,
		},
	}); err != nil {
		return fmt.Errorf("failed to register controllers: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("error running manager: %v", err)
	}
	return nil
}

// allReplicas is a manager.Runnable that runs on every replica, not only the leader.
type allReplicas func(context.Context) error

func (r allReplicas) Start(ctx context.Context) error { return r(ctx) }
func (allReplicas) NeedLeaderElection() bool          { return false }

var _ manager.LeaderElectionRunnable = allReplicas(nil)
