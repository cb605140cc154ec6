//! `dora-test-pattern`: a hardware-free camera node. See
//! [`dora_recorder_test_nodes::pattern_node`] for inputs, outputs and environment.

use dora_node_api::DoraNode;
use dora_recorder_test_nodes::pattern_node::{PatternSettings, run};

fn main() -> eyre::Result<()> {
    let settings = PatternSettings::from_env()?;
    let (node, events) = DoraNode::init_from_env()?;
    run(node, events, &settings)?;
    Ok(())
}
