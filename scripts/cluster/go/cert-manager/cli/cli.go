// Package cli is what the four cert-manager binaries of this module share: the process frame
// (signals, exit codes, logging), flags + --config file handling, and the TLS certificate
// source of the metrics servers. Written for this project against the root module
// github.com/cert-manager/cert-manager@v1.18.2 (upstream's cmd/* submodules are not on the
// module proxy); behaviour follows upstream's cmd/*/app.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	logsapi "k8s.io/component-base/logs/api/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/cert-manager/cert-manager/internal/apis/config/shared"
	cmdutil "github.com/cert-manager/cert-manager/internal/cmd/util"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/server/tls"
	"github.com/cert-manager/cert-manager/pkg/server/tls/authority"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
)

// Command is one component's command line.
type Command struct {
	Name, Short string
	// AlwaysErrCode: a signal ends the process with 128+signal (startupapicheck), otherwise
	// it is a graceful shutdown (exit 0)
	AlwaysErrCode bool
	AddFlags      func(fs *pflag.FlagSet)
	// ConfigFile (optional) decodes the file named by --config; Apply then copies its content
	// into the configuration, before the command line is parsed again (flags win over the file).
	ConfigFile func() (configfile.ConfigFile, func())
	// Complete runs once the configuration is final (feature gates, validation, logging).
	Complete func() error
	Run      func(ctx context.Context, args []string) error
}

// Main runs c with os.Args and exits as upstream's binaries do (1 on errors, 124 on timeouts).
func Main(c Command) {
	exitBehavior := cmdutil.GracefulShutdown
	if c.AlwaysErrCode {
		exitBehavior = cmdutil.AlwaysErrCode
	}
	ctx, exit := cmdutil.SetupExitHandler(context.Background(), exitBehavior)
	defer exit() // may call os.Exit: deferred first, runs last
	logf.InitLogs()
	defer logf.FlushLogs()
	ctrl.SetLogger(logf.Log)
	ctx = logf.NewContext(ctx, logf.Log, c.Name)
	if err := c.execute(ctx, os.Args[1:]); err != nil {
		logf.Log.Error(err, "error executing command")
		cmdutil.SetExitCode(err)
	}
}

func (c Command) execute(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet(c.Name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(os.Stdout, "%s\n\nUsage:\n  %s [flags]\n\nFlags:\n%s", c.Short, c.Name, fs.FlagUsages())
	}
	var config string
	if c.ConfigFile != nil {
		fs.StringVar(&config, "config", "", "Path to a file containing a configuration object of this component (flags override it)")
	}
	c.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if config != "" {
		path, err := filepath.Abs(config)
		if err != nil {
			return fmt.Errorf("failed to load config file %s, error %v", config, err)
		}
		f, apply := c.ConfigFile()
		loader, err := configfile.NewConfigurationFSLoader(nil, path)
		if err == nil {
			err = loader.Load(f)
		}
		if err != nil {
			return fmt.Errorf("failed to load config file %s, error %v", config, err)
		}
		apply()
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("failed to re-parse flags: %w", err)
		}
	}
	if c.Complete != nil {
		if err := c.Complete(); err != nil {
			return err
		}
	}
	logf.FromContext(ctx).Info("starting cert-manager "+c.Name, "version", util.AppVersion, "git_commit", util.AppGitCommit)
	return c.Run(ctx, fs.Args())
}

// Defaults returns the internal configuration defaulted the way the versioned API defaults it.
func Defaults(scheme *runtime.Scheme, versioned, internal runtime.Object) {
	scheme.Default(versioned)
	if err := scheme.Convert(versioned, internal, nil); err != nil {
		panic(err)
	}
}

// Complete applies the feature gates, validates the configuration and applies the logging options.
func Complete(gates map[string]bool, validate func() field.ErrorList, logging *logsapi.LoggingConfiguration) error {
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(gates); err != nil {
		return fmt.Errorf("failed to set feature gates: %w", err)
	}
	if errs := validate(); len(errs) > 0 {
		return fmt.Errorf("error validating flags: %w", errs.ToAggregate())
	}
	return logf.ValidateAndApply(logging)
}

// CertificateSource is the TLS certificate of a metrics server: files, a CA kept in a Secret,
// or nil (plain HTTP).
func CertificateSource(c shared.TLSConfig, restCfg *rest.Config, managedBy string) tls.CertificateSource {
	switch {
	case c.FilesystemConfigProvided():
		return &tls.FileCertificateSource{CertPath: c.Filesystem.CertFile, KeyPath: c.Filesystem.KeyFile}
	case c.DynamicConfigProvided():
		return &tls.DynamicSource{DNSNames: c.Dynamic.DNSNames, Authority: &authority.DynamicAuthority{
			SecretNamespace: c.Dynamic.SecretNamespace, SecretName: c.Dynamic.SecretName,
			SecretLabels: map[string]string{"app.kubernetes.io/managed-by": managedBy},
			LeafDuration: c.Dynamic.LeafDuration, RESTConfig: restCfg,
		}}
	}
	return nil
}

// MetricsTLSFlags registers the --metrics-* TLS flags shared by the controller and cainjector.
func MetricsTLSFlags(fs *pflag.FlagSet, c *shared.TLSConfig) {
	fs.StringVar(&c.Filesystem.CertFile, "metrics-tls-cert-file", c.Filesystem.CertFile, "path to the file containing the TLS certificate to serve metrics with")
	fs.StringVar(&c.Filesystem.KeyFile, "metrics-tls-private-key-file", c.Filesystem.KeyFile, "path to the file containing the TLS private key to serve metrics with")
	fs.DurationVar(&c.Dynamic.LeafDuration, "metrics-dynamic-serving-leaf-duration", c.Dynamic.LeafDuration, "leaf duration of metrics serving certificates")
	fs.StringVar(&c.Dynamic.SecretNamespace, "metrics-dynamic-serving-ca-secret-namespace", c.Dynamic.SecretNamespace, "namespace of the secret used to store the CA that signs metrics serving certificates")
	fs.StringVar(&c.Dynamic.SecretName, "metrics-dynamic-serving-ca-secret-name", c.Dynamic.SecretName, "name of the secret used to store the CA that signs metrics serving certificates")
	fs.StringSliceVar(&c.Dynamic.DNSNames, "metrics-dynamic-serving-dns-names", c.Dynamic.DNSNames, "DNS names that should be present on certificates generated by the metrics dynamic serving CA")
	fs.StringSliceVar(&c.CipherSuites, "metrics-tls-cipher-suites", c.CipherSuites, "Comma-separated list of cipher suites for the metrics server (default: Go's)")
	fs.StringVar(&c.MinTLSVersion, "metrics-tls-min-version", c.MinTLSVersion, "Minimum TLS version of the metrics server (default: Go's)")
}

// LeaderElectionFlags registers the --leader-elect* flags shared by the controller and cainjector.
func LeaderElectionFlags(fs *pflag.FlagSet, c *shared.LeaderElectionConfig) {
	fs.BoolVar(&c.Enabled, "leader-elect", c.Enabled, "If true, perform leader election between instances so that only one is active at a time")
	fs.StringVar(&c.Namespace, "leader-election-namespace", c.Namespace, "Namespace of the leader election Lease")
	fs.DurationVar(&c.LeaseDuration, "leader-election-lease-duration", c.LeaseDuration, "How long non-leaders wait after a renewal before trying to take over a led but unrenewed slot")
	fs.DurationVar(&c.RenewDeadline, "leader-election-renew-deadline", c.RenewDeadline, "How long the leader keeps trying to renew before it stops leading (<= lease duration)")
	fs.DurationVar(&c.RetryPeriod, "leader-election-retry-period", c.RetryPeriod, "How long clients wait between attempts to acquire and renew leadership")
}
