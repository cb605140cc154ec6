//! `dora-session-script`: a scripted session controller node. See
//! [`dora_recorder_test_nodes::script_node`] for inputs, outputs and environment.

use dora_node_api::DoraNode;
use dora_recorder_test_nodes::script_node::{run, schedule_from_env};

fn main() -> eyre::Result<()> {
    let schedule = schedule_from_env()?;
    let (node, events) = DoraNode::init_from_env()?;
    run(node, events, schedule)?;
    Ok(())
}
