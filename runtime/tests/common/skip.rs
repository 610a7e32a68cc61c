//! A check that cannot run on this machine (not root, no cgroup2 controllers...). Outside CI it
//! says SKIP and the test passes, so a developer's run is not blocked; under CI (`CI` set, as
//! scripts/test.sh and every CI service set it) it fails: a CI run never reports as passed a
//! check it did not make.

/// Whether this is a CI run: `CI` set to anything but empty, "0" or "false".
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Whether the run that started this test makes check `what` in another step of its own:
/// scripts/test.sh names such checks in `TFCTL_CHECKED_ELSEWHERE` (comma-separated) only when it
/// goes on to run that step (the cgroup v2 checks in its virtual machine), whose failure fails
/// the run.
fn checked_elsewhere(what: &str) -> bool {
    std::env::var("TFCTL_CHECKED_ELSEWHERE").is_ok_and(|v| v.split(',').any(|w| w.trim() == what))
}

/// Reports that `what` cannot run here because `why`: panics under CI (unless the same run makes
/// it elsewhere), else prints SKIP. The caller returns (or leaves the check out) afterwards.
pub fn cannot_run(what: &str, why: &str) {
    if checked_elsewhere(what) {
        println!("ELSEWHERE {what}: {why}; this run makes it in another step (TFCTL_CHECKED_ELSEWHERE)");
        return;
    }
    assert!(!ci(), "{what} cannot run here under CI=true: {why}");
    println!("SKIP {what}: {why} (not counted as a pass; under CI=true this fails)");
}
