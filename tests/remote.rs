//! End-to-end: controlling a running recorder from a terminal (`dora param set` / `delete` under
//! `dora up` + `dora start --detach`), and one dataflow across two dora daemons on loopback
//! (`dataflows/two-machines.yml`), each checked against what the test-pattern camera sent.

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use e2e::{
    Cluster, DoraDaemon, SentFrame, assert_contiguous, dora, files_ending, frame_indices, frames_sent, node_log, probe,
    read_json, read_send_log, serial, started_dataflow, temp_dir, text, videos_in, wait_for,
};

/// How late after `dora param set` returns the recorder may still act on it: the CLI returns once
/// the coordinator has forwarded it.
const PARAM_SLACK: Duration = Duration::from_millis(300);

/// `dora param set -d NAME recorder KEY VALUE`; returns when it started and when it returned.
fn set_param(dataflow: &str, key: &str, value: &str) -> (SystemTime, SystemTime) {
    let before = SystemTime::now();
    let output = dora(&["param", "set", "-d", dataflow, "recorder", key, value], Duration::from_secs(30));
    assert!(output.status.success(), "dora param set {key} {value}: {}", text(&output));
    (before, SystemTime::now())
}

/// The camera's send log, waiting until it has at least `frames` lines.
fn sent_frames(path: &Path, frames: usize) -> Vec<SentFrame> {
    wait_for(&format!("{frames} frames in the send log"), Duration::from_secs(60), || {
        read_send_log(path).len() >= frames
    });
    read_send_log(path)
}

#[test]
fn dora_param_set_alone_starts_and_stops_a_session_on_a_detached_dataflow() {
    let _serial = serial();
    let dir = temp_dir("remote-param");
    let (storage, send_log) = (dir.join("recordings"), dir.join("sent.log"));
    let daemon = DoraDaemon::up();
    let (storage_env, send_log_env) =
        (format!("STORAGE={}", storage.display()), format!("SEND_LOG={}", send_log.display()));
    let envs = ["AUTO_SESSION=false".to_owned(), storage_env, send_log_env];
    let start = dora(&detached_start("dataflows/record.yml", "e2e-param", &envs), Duration::from_secs(60));
    assert!(start.status.success(), "dora start: {}", text(&start));
    let dataflow = started_dataflow(&text(&start));

    // Frames flow, nothing is recorded: no session yet.
    sent_frames(&send_log, 20);
    assert!(videos_in(&storage).is_empty(), "AUTO_SESSION=false records nothing before `session` is set");

    let (set_before, set_after) = set_param("e2e-param", "session", "\"run-1\"");
    std::thread::sleep(Duration::from_millis(1500));
    let (bad_before, _) = set_param("e2e-param", "crf", "\"very good\"");
    std::thread::sleep(Duration::from_millis(1500));
    let (stop_before, stop_after) = set_param("e2e-param", "session", "null");
    let stop_count = read_send_log(&send_log).len();
    // The camera goes on; none of these frames may reach the file.
    sent_frames(&send_log, stop_count + 15);

    let stop = dora(&["stop", "--name", "e2e-param", "--grace-duration", "10s"], Duration::from_secs(60));
    assert!(stop.status.success(), "dora stop: {}", text(&stop));
    drop(daemon);

    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}");
    let indices = frame_indices(&files[0], (640, 480));
    let first = indices[0].unwrap();
    assert!(first >= 20, "frames sent before `session` was set are not recorded: the file starts at {first}");
    let count = indices.len() as u32;
    assert_contiguous(&files[0], (640, 480), first, count);
    assert_eq!(probe(&files[0]).frames, u64::from(count));
    let sent = read_send_log(&send_log);
    let sent_at = |index: u32| sent[index as usize].at;
    let last = first + count - 1;
    assert!(sent_at(first) >= set_before, "the first frame was sent after `session` was set");
    assert!(sent_at(first - 1) <= set_after + PARAM_SLACK, "no frame sent after `session` was set is missing");
    assert!(sent_at(last) <= stop_after + PARAM_SLACK, "the last frame was sent before `session` was cleared");
    assert!(sent_at(last + 1) >= stop_before, "no frame sent before `session` was cleared is missing");
    assert!(sent.len() as u32 > last + 10, "the camera sent frames after the stop, and they are not in the file");
    assert!(sent_at(last) > bad_before, "a bad value left the recording going");
    assert_eq!(frames_sent(&node_log(&dataflow, "camera")), sent.len() as u32);

    let manifests = files_ending(&storage, ".session.json");
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let manifest = read_json(&manifests[0]);
    assert_eq!(manifest["session_id"], "run-1");
    assert_eq!(
        (manifest["started_by"].as_str(), manifest["stopped_by"].as_str()),
        (Some("parameter"), Some("parameter"))
    );
    let recorder_log = node_log(&dataflow, "recorder");
    let complaint: Vec<&str> = recorder_log.lines().filter(|line| line.contains("for parameter crf")).collect();
    assert_eq!(complaint.len(), 1, "one line for the bad value: {recorder_log}");
    assert!(
        complaint[0].contains("very good")
            && complaint[0].contains("0..=51")
            && complaint[0].contains("nothing changed"),
        "{}",
        complaint[0]
    );
}

/// Starts `two-machines.yml` on a cluster of daemons A and B with the camera's send log; returns
/// the dataflow's UUID once the recorder has opened its file and the camera sent `frames`.
fn start_two_machines(cluster: &Cluster, name: &str, storage: &Path, send_log: &Path, frames: usize) -> String {
    let (storage_env, send_log_env) =
        (format!("STORAGE={}", storage.display()), format!("SEND_LOG={}", send_log.display()));
    let envs = [storage_env, send_log_env];
    let start = cluster.dora(&detached_start("dataflows/two-machines.yml", name, &envs), Duration::from_secs(60));
    assert!(start.status.success(), "dora start: {}", text(&start));
    wait_for("the recorder's first file", Duration::from_secs(30), || !videos_in(storage).is_empty());
    sent_frames(send_log, frames);
    started_dataflow(&text(&start))
}

/// The arguments of `dora start FLOW --name NAME --detach` with `--env` for each of `envs`.
fn detached_start<'a>(flow: &'a str, name: &'a str, envs: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["start", flow, "--name", name, "--detach"];
    for env in envs {
        args.extend(["--env", env.as_str()]);
    }
    args
}

/// The names of the binaries `machine`'s daemon runs.
fn binaries_on(cluster: &Cluster, machine: &str) -> Vec<String> {
    cluster
        .node_pids(machine)
        .iter()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .filter_map(|exe| Some(exe.file_name()?.to_string_lossy().into_owned()))
        .collect()
}

#[test]
fn two_daemons_on_loopback_record_exactly_the_frames_the_other_machines_camera_sent() {
    let _serial = serial();
    let dir = temp_dir("remote-two-machines");
    let (storage, send_log) = (dir.join("recordings"), dir.join("sent.log"));
    let cluster = Cluster::start(&["A", "B"]);
    let dataflow = start_two_machines(&cluster, "e2e-two", &storage, &send_log, 45);

    let (on_a, on_b) = (binaries_on(&cluster, "A"), binaries_on(&cluster, "B"));
    let placed = on_a.iter().any(|b| b == "dora-test-pattern")
        && !on_a.iter().any(|b| b == "dora-video-recorder")
        && on_b.iter().any(|b| b == "dora-video-recorder")
        && !on_b.iter().any(|b| b == "dora-test-pattern");
    assert!(placed, "A runs {on_a:?}, B runs {on_b:?}\n{}\n{}", cluster.daemon_log("A"), cluster.daemon_log("B"));

    // Stop the camera first: its last frames reach B before its output closes, the recorder
    // then sees its input close, finalizes and exits, and the dataflow finishes. (A plain
    // `dora stop` reaches the two daemons at their own times: see the next test.)
    let stop = cluster.dora(&["node", "stop", "camera", "-d", "e2e-two", "--grace", "10s"], Duration::from_secs(60));
    assert!(stop.status.success(), "dora node stop: {}", text(&stop));
    wait_for("the dataflow to finish", Duration::from_secs(30), || {
        text(&cluster.dora(&["list", "-f", "json"], Duration::from_secs(30))).contains("\"Finished\"")
    });
    let leftovers = cluster.stop();
    assert!(leftovers.is_empty(), "processes still alive after the cluster stopped: {leftovers:?}");

    let sent = frames_sent(&node_log(&dataflow, "camera"));
    assert_eq!(read_send_log(&send_log).len() as u32, sent);
    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(probe(&files[0]).frames, u64::from(sent), "exactly the frames the camera on A sent");
    assert_contiguous(&files[0], (640, 480), 0, sent);
    let manifest = read_json(&files_ending(&storage, ".session.json")[0]);
    assert_eq!(
        (manifest["started_by"].as_str(), manifest["stopped_by"].as_str()),
        (Some("run_start"), Some("end_of_run"))
    );
}

#[test]
fn a_plain_dora_stop_across_daemons_loses_at_most_the_frames_sent_after_the_recorder_stopped() {
    let _serial = serial();
    let dir = temp_dir("remote-plain-stop");
    let (storage, send_log) = (dir.join("recordings"), dir.join("sent.log"));
    let cluster = Cluster::start(&["A", "B"]);
    let dataflow = start_two_machines(&cluster, "e2e-plain", &storage, &send_log, 30);
    let stop = cluster.dora(&["stop", "--name", "e2e-plain", "--grace-duration", "10s"], Duration::from_secs(60));
    assert!(stop.status.success(), "dora stop: {}", text(&stop));
    let daemon_b = cluster.daemon_log("B");
    let leftovers = cluster.stop();
    assert!(leftovers.is_empty(), "processes still alive after the cluster stopped: {leftovers:?}");

    let sent = frames_sent(&node_log(&dataflow, "camera"));
    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}");
    let recorded = probe(&files[0]).frames as u32;
    assert_contiguous(&files[0], (640, 480), 0, recorded);
    // dora 1.1 sends the stop to each daemon on its own: B can stop the recorder's event stream
    // while the camera on A still sends for a frame or two, which B then drops.
    let lost = sent - recorded;
    assert!(lost <= 2, "{lost} of {sent} frames lost at the end");
    if lost > 0 {
        assert!(daemon_b.contains("dropping `camera/image` to `recorder`"), "B said why: {daemon_b}");
    }
}
