//! One module per subcommand group.

pub mod audit;
pub mod camera;
pub mod footage;
pub mod status;
pub mod user;

use custos_client::Client;

use crate::{Cli, Cmd};

/// Prints a value as pretty JSON.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let client = Client::connect(&cli.addr, cli.token.as_deref()).await?;
    match cli.cmd {
        Cmd::Camera(c) => camera::run(&client, c, cli.json).await,
        Cmd::Search(a) => footage::search(&client, a, cli.json).await,
        Cmd::Fetch(a) => footage::fetch(&client, a, cli.json).await,
        Cmd::Status => status::run(&client, cli.json).await,
        Cmd::User(c) => user::run_user(&client, c, cli.json).await,
        Cmd::Token(c) => user::run_token(&client, c, cli.json).await,
        Cmd::Audit(c) => audit::run(&client, c, cli.json).await,
    }
}
