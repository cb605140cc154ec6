//! `dora-blob-detector`: finds saturated-red blobs in camera frames and reports them in
//! dora-yolo's detection format. See [`dora_recorder_test_nodes::blob_node`] for inputs, outputs
//! and environment.

use dora_node_api::DoraNode;
use dora_recorder_test_nodes::blob_node::{DetectorSettings, run};

fn main() -> eyre::Result<()> {
    let settings = DetectorSettings::from_env()?;
    let (node, events) = DoraNode::init_from_env()?;
    run(node, events, &settings)?;
    Ok(())
}
