from analysis.tracking import phase_durations, tracking_problems


def obs(t, status, phase=None, progress=None, created="2026-01-01T00:00:00+00:00", completed=None):
    return {"t": t, "status": status, "phase": phase, "progress": progress, "created_at": created,
            "completed_at": completed}


DONE = "2026-01-01T00:00:09+00:00"
GOOD = [
    obs(1.0, "pending", "upload", 0),
    obs(2.0, "processing", "script", 5),
    obs(3.0, "processing", "audio", 20),
    obs(5.0, "processing", "visual", 60),
    obs(6.0, "processing", "compose", 75),
    obs(9.0, "completed", "done", 100, completed=DONE),
]


def test_phase_durations_from_first_observations():
    durations = phase_durations(GOOD, submitted_at=0.5, finished_at=9.0)
    assert durations == {"queued": 1.5, "script": 1.0, "audio": 2.0, "visual": 1.0, "compose": 3.0}


def test_unobserved_phase_is_none_not_a_guess():
    trace = [obs(1.0, "processing", "script", 5), obs(4.0, "processing", "compose", 80),
             obs(6.0, "completed", "done", 100, completed=DONE)]
    durations = phase_durations(trace, submitted_at=0.0, finished_at=6.0)
    assert durations["audio"] is None and durations["visual"] is None
    assert durations["script"] == 3.0 and durations["compose"] == 2.0 and durations["queued"] == 1.0


def test_unfinished_job_has_no_end_for_its_last_phase():
    durations = phase_durations([obs(1.0, "processing", "audio", 30)], submitted_at=0.0, finished_at=None)
    assert durations["audio"] is None and durations["queued"] == 1.0


def test_consistent_trace_has_no_problems():
    assert tracking_problems(GOOD) == []


def test_each_broken_promise_is_named():
    trace = [
        obs(1.0, "processing", "audio", 40),
        obs(2.0, "pending", "upload", 30),
        obs(3.0, "completed", "done", 100, completed="2025-12-31T23:59:00+00:00"),
        obs(4.0, "failed", "done", 100, completed=DONE),
        obs(5.0, "weird", None, 120),
    ]
    problems = tracking_problems(trace)
    assert "status moved backwards: processing → pending" in problems
    assert "progress decreased: 40 → 30" in problems
    assert "completed_at is before created_at" in problems
    assert "terminal status completed changed to failed" in problems
    assert "unknown status 'weird'" in problems
    assert "progress 120 outside 0..100" in problems


def test_terminal_without_completed_at():
    assert tracking_problems([obs(1.0, "failed", "done", 10)]) == ["failed without completed_at"]
