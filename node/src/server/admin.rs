//! The Admin service: users, tokens, grants, camera sensitivity. Every change is one Raft
//! entry carrying its own audit record.

use custos_proto::v1 as pb;
use custos_proto::v1::admin_server::Admin;
use tonic::{Request, Response, Status};

use super::{convert, Services};
use crate::access::{Action, Role, TOKEN_TTL_DEFAULT_MS, TOKEN_TTL_MAX_MS};
use crate::meta::{Command, TokenRecord, User};
use crate::retention::Policy;

fn validate_name(what: &str, s: &str) -> Result<(), Status> {
    custos_formats::fields::validate_user_name(what, s).map_err(Status::invalid_argument)
}

impl Services {
    /// A new token for `user`: the secret, its hash and its record.
    fn new_token(&self, user: &str, ttl_days: u32) -> Result<(String, [u8; 32], TokenRecord), Status> {
        let ttl_ms = if ttl_days == 0 { TOKEN_TTL_DEFAULT_MS } else { i64::from(ttl_days) * 86_400_000 };
        if ttl_ms > TOKEN_TTL_MAX_MS {
            return Err(Status::invalid_argument("token lifetime may be at most 366 days"));
        }
        let secret = crate::init::new_token();
        let hash = *blake3::hash(secret.as_bytes()).as_bytes();
        let rec = TokenRecord {
            id: hex::encode(&hash[..6]),
            user: user.to_string(),
            created_ms: 0,
            expires_ms: self.clock.now_ms() + ttl_ms,
            revoked: false,
        };
        Ok((secret, hash, rec))
    }
}

#[tonic::async_trait]
impl Admin for Services {
    async fn add_user(&self, req: Request<pb::AddUserRequest>) -> Result<Response<pb::TokenIssued>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let r = req.into_inner();
        validate_name("user name", &r.name)?;
        let role = Role::parse(&r.role).map_err(Status::invalid_argument)?;
        let case = match (role, r.case_id.trim()) {
            (Role::Investigator, "") => {
                return Err(Status::invalid_argument("an investigator needs --case: the one case they may read"))
            }
            (Role::Investigator, c) => {
                validate_name("case id", c)?;
                Some(c.to_string())
            }
            (_, "") => None,
            (_, _) => return Err(Status::invalid_argument("--case applies to investigators only")),
        };
        let (secret, hash, token) = self.new_token(&r.name, r.ttl_days)?;
        let expires_ms = token.expires_ms;
        let token_id = token.id.clone();
        let user =
            User { name: r.name.clone(), role, case: case.clone(), disabled: false, grants: vec![], created_ms: 0 };
        let detail =
            format!("user {} role={}{}", r.name, role.as_str(), case.map(|c| format!(" case={c}")).unwrap_or_default());
        self.admin_change(&caller, "user-add", detail, Command::CreateUser { user, token_hash: hash, token }).await?;
        Ok(Response::new(pb::TokenIssued { user: r.name, token_id, token: secret, expires_ms }))
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.guard(&req, Action::ManageUsers, false).await?;
        let users = self.meta.read(|c| c.users()).await?;
        Ok(Response::new(pb::ListUsersResponse { users: users.iter().map(convert::user).collect() }))
    }

    async fn disable_user(
        &self,
        req: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let name = req.into_inner().name;
        validate_name("user name", &name)?;
        if name == caller.who.name {
            return Err(Status::failed_precondition("you cannot disable yourself; ask another administrator"));
        }
        self.admin_change(&caller, "user-disable", format!("user {name}"), Command::DisableUser { name }).await?;
        Ok(Response::new(pb::DisableUserResponse {}))
    }

    async fn issue_token(&self, req: Request<pb::IssueTokenRequest>) -> Result<Response<pb::TokenIssued>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let r = req.into_inner();
        validate_name("user name", &r.user)?;
        let (secret, hash, token) = self.new_token(&r.user, r.ttl_days)?;
        let (expires_ms, token_id) = (token.expires_ms, token.id.clone());
        let detail = format!("token {token_id} for {}", r.user);
        self.admin_change(&caller, "token-issue", detail, Command::IssueToken { token_hash: hash, token }).await?;
        Ok(Response::new(pb::TokenIssued { user: r.user, token_id, token: secret, expires_ms }))
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        self.guard(&req, Action::ManageUsers, false).await?;
        let user = req.into_inner().user;
        let tokens = self.meta.read(|c| c.tokens()).await?;
        let tokens = tokens.iter().filter(|t| user.is_empty() || t.user == user).map(convert::token).collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }

    async fn revoke_token(
        &self,
        req: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let given = req.into_inner().id;
        // Accept the token itself as well as its id; only the id is ever logged.
        let id = if given.starts_with("cst_") {
            hex::encode(&blake3::hash(given.trim().as_bytes()).as_bytes()[..6])
        } else {
            given.trim().to_string()
        };
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument("a token id is 12 hex digits, as `custos token list` shows"));
        }
        self.admin_change(&caller, "token-revoke", format!("token {id}"), Command::RevokeToken { id }).await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn grant_camera(
        &self,
        req: Request<pb::GrantCameraRequest>,
    ) -> Result<Response<pb::GrantCameraResponse>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let r = req.into_inner();
        validate_name("user name", &r.user)?;
        crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
        let detail = format!("user {} camera {} grant={}", r.user, r.camera, r.grant);
        self.admin_change(
            &caller,
            "camera-grant",
            detail,
            Command::GrantCamera { user: r.user, camera: r.camera, grant: r.grant },
        )
        .await?;
        Ok(Response::new(pb::GrantCameraResponse {}))
    }

    async fn set_camera_sensitive(
        &self,
        req: Request<pb::SetCameraSensitiveRequest>,
    ) -> Result<Response<pb::SetCameraSensitiveResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let r = req.into_inner();
        crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
        let detail = format!("camera {} sensitive={}", r.camera, r.sensitive);
        self.admin_change(
            &caller,
            "camera-sensitive",
            detail,
            Command::SetSensitive { camera: r.camera, sensitive: r.sensitive },
        )
        .await?;
        Ok(Response::new(pb::SetCameraSensitiveResponse {}))
    }

    async fn list_policies(
        &self,
        req: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        self.guard(&req, Action::ViewPolicies, false).await?;
        let (default, cams) = self.meta.read(|c| c.policies()).await?;
        let p =
            |camera: &str, p: &Policy| pb::Policy { camera: camera.into(), min_days: p.min_days, max_days: p.max_days };
        Ok(Response::new(pb::ListPoliciesResponse {
            default_policy: Some(p("", &default)),
            cameras: cams.iter().map(|(c, pol)| p(c, pol)).collect(),
        }))
    }

    async fn set_policy(&self, req: Request<pb::SetPolicyRequest>) -> Result<Response<pb::SetPolicyResponse>, Status> {
        let caller = self.guard(&req, Action::ManagePolicies, false).await?;
        let r = req.into_inner().policy.ok_or_else(|| Status::invalid_argument("policy is required"))?;
        let policy = Policy::new(r.min_days, r.max_days).map_err(Status::invalid_argument)?;
        let camera = if r.camera.is_empty() {
            None
        } else {
            crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
            Some(r.camera.clone())
        };
        let scope = camera.as_deref().map(|c| format!("camera {c}")).unwrap_or_else(|| "default".into());
        let detail = format!("{scope} min_days={} max_days={}", policy.min_days, policy.max_days);
        self.admin_change(&caller, Action::ManagePolicies.as_str(), detail, Command::SetPolicy { camera, policy })
            .await?;
        Ok(Response::new(pb::SetPolicyResponse {}))
    }
}
