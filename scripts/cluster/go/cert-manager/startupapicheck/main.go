// cert-manager startupapicheck v1.18.2 ("check api"): waits until a dry-run create of a
// cert-manager v1 Certificate succeeds, i.e. the CRDs are installed and the webhook answers.
// Wired from the root module's pkg/util/cmapichecker (upstream's cmd/startupapicheck submodule
// is not on the module proxy). Kubernetes access flags are client-go's clientcmd ones
// (--kubeconfig, --context, --namespace) instead of upstream's full k8s.io/cli-runtime set.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/logs"

	cmdutil "github.com/cert-manager/cert-manager/internal/cmd/util"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util/cmapichecker"
	"github.com/cert-manager/cert-manager/symptomdx/cli"
)

func main() {
	logOptions := logs.NewOptions()
	loading := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{}
	var waitFor, interval time.Duration
	cli.Main(cli.Command{
		Name:          "startupapicheck",
		Short:         "Check that cert-manager started successfully\n\nstartupapicheck check api [flags]: dry-run create a cert-manager v1 Certificate to verify that the CRDs\nare installed and the webhooks are reachable by the Kubernetes API server",
		AlwaysErrCode: true,
		AddFlags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&waitFor, "wait", 0, "Wait until the cert-manager API is ready (default 0s = poll once)")
			fs.DurationVar(&interval, "interval", 5*time.Second, "Time between checks when waiting, must include unit, e.g., 1m or 10m")
			fs.StringVar(&loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file to use")
			fs.StringVar(&overrides.CurrentContext, "context", "", "The name of the kubeconfig context to use")
			fs.StringVarP(&overrides.Context.Namespace, "namespace", "n", "", "Namespace of the dry-run Certificate (default: the pod's namespace)")
			var logFlags pflag.FlagSet
			logf.AddFlagsNonDeprecated(logOptions, &logFlags)
			logFlags.VisitAll(func(f *pflag.Flag) {
				if f.Name == "v" {
					f.NoOptDefVal = "2" // "-v" alone, as cmctl's "check api -v" (the chart passes it)
				}
				fs.AddFlag(f)
			})
		},
		Complete: func() error { return logf.ValidateAndApply(logOptions) },
		Run: func(ctx context.Context, args []string) error {
			if len(args) != 2 || args[0] != "check" || args[1] != "api" {
				return fmt.Errorf("unknown command %q: the only command is \"check api\"", args)
			}
			kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, overrides)
			namespace, _, err := kc.Namespace()
			if err != nil {
				return err
			}
			restConfig, err := kc.ClientConfig()
			if err != nil {
				return err
			}
			checker, err := cmapichecker.New(restConfig, namespace)
			if err != nil {
				return err
			}
			return checkAPI(ctx, checker, waitFor, interval)
		},
	})
}

// checkAPI polls until the API answers, as upstream's check/api Options.Run (exit 124 on timeout).
func checkAPI(ctx context.Context, checker cmapichecker.Interface, waitFor, interval time.Duration) error {
	log := logf.FromContext(ctx, "checkAPI")
	start := time.Now()
	var lastError error
	pollErr := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		err := checker.Check(ctx)
		if err == nil {
			return true, nil
		}
		lastError = err
		if simple := cmapichecker.TranslateToSimpleError(err); simple != nil {
			lastError = simple
		}
		log.V(2).Info("Not ready", "err", lastError, "underlyingError", err)
		if time.Since(start) > waitFor {
			return false, context.DeadlineExceeded
		}
		return false, nil
	})
	if pollErr != nil {
		if errors.Is(pollErr, context.DeadlineExceeded) && waitFor > 0 {
			log.V(2).Info("Timed out", "after", waitFor, "err", pollErr)
			cmdutil.SetExitCode(pollErr)
		} else {
			cmdutil.SetExitCode(lastError)
		}
		return lastError
	}
	fmt.Println("The cert-manager API is ready")
	return nil
}
