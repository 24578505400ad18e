"""Operating the product: the `symptom-dx` command and deploying a model to the cluster."""
