// cert-manager webhook v1.18.2: validation, mutation and conversion of cert-manager's API,
// wired from the root module (upstream's cmd/webhook submodule is not on the module proxy).
// Flags and config file (WebhookConfiguration) are the root module's pkg/webhook/options.
package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cert-manager/cert-manager/internal/apis/config/webhook/validation"
	cmwebhook "github.com/cert-manager/cert-manager/internal/webhook"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	webhookconfigfile "github.com/cert-manager/cert-manager/pkg/webhook/configfile"
	"github.com/cert-manager/cert-manager/pkg/webhook/options"
	"github.com/cert-manager/cert-manager/symptomdx/cli"
)

func main() {
	c, err := options.NewWebhookConfiguration()
	if err != nil {
		panic(err)
	}
	cli.Main(cli.Command{
		Name:     "webhook",
		Short:    fmt.Sprintf("Webhook component providing API validation, mutation and conversion functionality for cert-manager (%s) (%s)", util.AppVersion, util.AppGitCommit),
		AddFlags: func(fs *pflag.FlagSet) { options.AddConfigFlags(fs, c) },
		ConfigFile: func() (configfile.ConfigFile, func()) {
			f := webhookconfigfile.New()
			return f, func() { f.Config.DeepCopyInto(c) }
		},
		Complete: func() error {
			return cli.Complete(c.FeatureGates, func() field.ErrorList { return validation.ValidateWebhookConfiguration(c, nil) }, &c.Logging)
		},
		Run: func(ctx context.Context, _ []string) error {
			srv, err := cmwebhook.NewCertManagerWebhookServer(logf.FromContext(ctx), *c)
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	})
}
