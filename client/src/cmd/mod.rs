//! One module per subcommand group.

pub mod audit;
pub mod camera;
pub mod change;
pub mod export;
pub mod footage;
pub mod hold;
pub mod node;
pub mod ops;
pub mod policy;
pub mod seal;
pub mod status;
pub mod user;

use anyhow::Context;
use custos_client::{Client, Transport};

use crate::{Cli, Cmd};

/// Says that a command was queued as change `id` and waits for an approver.
pub fn pending(id: u64, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        print_json(&serde_json::json!({"change_id": id, "state": "pending"}));
    } else {
        println!("pending change {id}: waiting for an approver (custos change show {id})");
    }
    Ok(())
}

/// Prints a value as pretty JSON.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // Offline verification needs no node.
    if let Cmd::Export(export::ExportCmd::Verify { dir, pubkey, integrity_only }) = &cli.cmd {
        return export::verify(dir, pubkey.as_deref(), *integrity_only, cli.json);
    }
    if let Cmd::Seal(seal::SealCmd::Verify { file, pubkey, integrity_only }) = &cli.cmd {
        return seal::verify(file, pubkey.as_deref(), *integrity_only, cli.json);
    }
    let transport = match (&cli.ca, cli.insecure) {
        (_, true) => Transport::Plaintext,
        (Some(path), false) => {
            let ca_pem =
                std::fs::read(path).with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            Transport::Tls { ca_pem }
        }
        (None, false) => anyhow::bail!(
            "the node's certificate must be checked: pass --ca FILE or set CUSTOS_CA (DATA/keys/ca.pem on the node), \
             or --insecure for a development node without TLS"
        ),
    };
    let client = Client::connect(&cli.addr, cli.token.as_deref(), &transport).await?;
    match cli.cmd {
        Cmd::Camera(c) => camera::run(&client, c, cli.json).await,
        Cmd::Search(a) => footage::search(&client, a, cli.json).await,
        Cmd::Fetch(a) => footage::fetch(&client, a, cli.json).await,
        Cmd::Status => status::run(&client, cli.json).await,
        Cmd::Backup(c) => status::backup(&client, c, cli.json).await,
        Cmd::Nodes => node::list(&client, cli.json).await,
        Cmd::Node(c) => node::run(&client, c, cli.json).await,
        Cmd::User(c) => user::run_user(&client, c, cli.json).await,
        Cmd::Token(c) => user::run_token(&client, c, cli.json).await,
        Cmd::Change(c) => change::run(&client, c, cli.json).await,
        Cmd::Seal(c) => seal::run(&client, c, cli.json).await,
        Cmd::Audit(c) => audit::run(&client, c, cli.json).await,
        Cmd::Policy(c) => policy::run(&client, c, cli.json).await,
        Cmd::Hold(c) => hold::run(&client, c, cli.json).await,
        Cmd::Export(c) => export::run(&client, c, cli.json).await,
        Cmd::Alarms(a) => ops::alarms(&client, a, cli.json).await,
        Cmd::Patrol(a) => ops::patrol(&client, a, cli.json).await,
        Cmd::Shift(c) => ops::shift(&client, c, cli.json).await,
        Cmd::Fault(c) => ops::fault(&client, c, cli.json).await,
        Cmd::Duty(c) => ops::duty(&client, c, cli.json).await,
        Cmd::Report(c) => ops::report(&client, c, cli.json).await,
    }
}
