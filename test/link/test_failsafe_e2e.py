"""Every supervisor failsafe through the real link against fc-sim: the PX4 mode command (or the force
disarm) leaves within one 10 ms control period of the trigger, and the FC accepts it."""
from ssm_mbrl_ros.bench.fc import bench_fc


def test_every_failsafe_acts_within_one_control_period():
    r = bench_fc(duration_s=3.0, settle_s=2.0, inject_at_s=0.2, failsafe_flight_s=0.6)
    assert r["errors"] == [] and r.get("errors_failsafe_flights", []) == [], r
    assert r["hover_rmse_m"] <= 0.1
    reasons = {"stale_state", "nan_action", "geofence", "tilt", "surprise", "overrun", "battery", "operator_kill"}
    assert set(r["failsafe_reaction_ms"]) == reasons
    for reason, ms in r["failsafe_reaction_ms"].items():
        assert ms is not None and 0.0 <= ms <= 10.0, (reason, ms)
        assert r["failsafe_ack_ms"][reason] is not None, reason  # the FC acknowledged (ACCEPTED) the command
    assert r["failsafes_within_one_period"]
    # the flight controller's own offboard-loss failsafe, parameters set over MAVLink, no supervisor in the loop
    cases = {(c["COM_OF_LOSS_T"], c["COM_OBL_RC_ACT"]): c for c in r["fc_offboard_loss"]}
    assert set(cases) == {(0.5, 5), (1.0, 4)}
    assert cases[(0.5, 5)]["mode_after"] == "HOLD" and cases[(1.0, 4)]["mode_after"] == "LAND"
    for (loss_t, _), c in cases.items():
        assert loss_t <= c["failsafe_after_s"] <= loss_t + 0.02, c
    assert r["fc_offboard_loss_ok"]
