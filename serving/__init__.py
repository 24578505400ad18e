"""KServe v2 predictor for the symptom-based disease classifier.

``python -m serving --model_dir DIR_OR_URI`` serves ``disease-classifier`` on REST 8080 and
gRPC 8081 (see README.md for the contract); ``make run`` starts it as a subprocess with
``pipelines.local_stack.model_server``. The heavy modules (KServe) are imported on use.
"""
