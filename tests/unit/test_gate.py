from symptom_dx.tracking import decide, flatten_metrics


def test_first_model_is_promoted():
    v = decide("k3_top1", 0.9, None, None, 0.0)
    assert v.promoted and "no champion" in v.reason


def test_better_model_is_promoted():
    v = decide("k3_top1", 0.92, "3", 0.91, 0.0)
    assert v.promoted and "beats champion v3" in v.reason


def test_equal_model_is_not_promoted():
    v = decide("k3_top1", 0.91, "3", 0.91, 0.0)
    assert not v.promoted and "champion stays" in v.reason


def test_min_improvement_is_required():
    assert not decide("k3_top1", 0.915, "3", 0.91, 0.01).promoted


def test_lower_is_better_metrics_are_compared_downwards():
    assert decide("k3_log_loss", 0.20, "3", 0.25, 0.0).promoted
    worse = decide("k3_log_loss", 0.30, "3", 0.25, 0.0)
    assert not worse.promoted and "needed < 0.2500" in worse.reason
    assert not decide("k3_ece", 0.019, "3", 0.02, 0.005).promoted


def test_flatten_metrics():
    assert flatten_metrics({"k3": {"top1": 0.5}, "full": {"ece": 0.1}}) == {
        "k3_top1": 0.5,
        "full_ece": 0.1,
    }
