"""End to end over UDP loopback against fc-sim in a subprocess: handshake, arm, OFFBOARD, hover, land;
and the same hover with 20 % packet loss and 50 ms jitter each way."""
from ssm_mbrl_ros.link.rehearsal import rehearse


def test_offboard_hover_through_fc_sim():
    # 0.2 s stale limit: this test is about the handshake and hover; test_stale_e2e covers 50 ms staleness
    r = rehearse(duration_s=5.0, target_pos_m=(0.5, -0.5, 1.5), settle_s=3.0,
                 supervisor_overrides={"max_state_age_s": 0.2})
    log = r["log"]
    assert r["errors"] == [] and r["failsafe"] is None
    assert log.offboard_s is not None
    assert r["hover_rmse_m"] <= 0.1, r
    assert abs(r["final_pos_m"][2] - 1.5) < 0.1
    assert 9.5 <= r["loop_period_ms"]["mean"] <= 10.5  # 100 Hz
    assert "mode POSCTL -> OFFBOARD" in r["fc_sim_output"] and "mode OFFBOARD -> LAND" in r["fc_sim_output"]


def test_hover_holds_under_packet_loss_and_jitter():
    # With 50 ms jitter the newest state is routinely older than 50 ms, so the stale-state limit is
    # raised to 150 ms for this run (documented); 1 Hz heartbeats under 20 % loss need a longer limit too.
    r = rehearse(duration_s=6.0, target_pos_m=(0.0, 0.0, 1.5), settle_s=4.0,
                 fc_overrides=["loss=0.2", "jitter_s=0.05", "wind_mps=[1.0,0.5,0.0]", "seed=3"],
                 supervisor_overrides={"max_state_age_s": 0.15, "max_fc_heartbeat_age_s": 6.0})
    assert r["failsafe"] is None and r["errors"] == [], r
    assert r["hover_rmse_m"] <= 0.1, r
    out = r["fc_sim_output"]
    n_sp = int(out.split(" setpoints")[0].rsplit(" ", 1)[1])
    assert 380 <= n_sp <= 560, out  # about 80 % of ~6.5 s x 100 Hz arrived: the loss was real
