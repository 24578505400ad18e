"""KServe v2 predictor for the symptom-based disease classifier.

``python -m serving --model_dir DIR_OR_URI`` serves ``disease-classifier`` on REST 8080 and
gRPC 8081 (see README.md for the contract). ``serving.launcher.start_model_server`` starts it
as a subprocess for other code. The heavy modules (KServe) are imported on use.
"""
