"""Training entry point for ${{ values.name }}.

Reads data from $DATA_DIR, logs parameters, metrics and the model to MLflow
(MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME come from the ${{ values.name }}-mlflow ConfigMap).
"""

import json
import os

import mlflow


def main() -> None:
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "${{ values.mlflowExperiment }}"))
    tags = json.loads(os.environ.get("MLFLOW_TAGS", "{}"))
    with mlflow.start_run(tags=tags):
        mlflow.log_params(
            {
                "world_size": os.environ.get("WORLD_SIZE", "1"),
                "gpus_per_node": os.environ.get("GPUS_PER_NODE", "1"),
                "gpu_type": "${{ values.gpuType }}",
            }
        )
        # TODO: load data from os.environ["DATA_DIR"], train, evaluate, then
        # mlflow.log_metric("eval_loss", loss) and mlflow.pytorch.log_model(model, "model").


if __name__ == "__main__":
    main()
