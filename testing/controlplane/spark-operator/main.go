// Command spark-operator is the kubeflow Spark Operator (controller and webhook),
// built from its own Go module at the version pinned in go.mod / go.sum. It is
// the same command tree as upstream cmd/operator/main.go (a main package cannot
// be imported, so its few lines are repeated here).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubeflow/spark-operator/v2/cmd/operator/controller"
	"github.com/kubeflow/spark-operator/v2/cmd/operator/version"
	"github.com/kubeflow/spark-operator/v2/cmd/operator/webhook"
)

func main() {
	command := &cobra.Command{
		Use:   "spark-operator",
		Short: "Spark operator",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	command.AddCommand(controller.NewCommand())
	command.AddCommand(webhook.NewCommand())
	command.AddCommand(version.NewCommand())
	if err := command.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}
