//! The Admin service: users, tokens, grants, camera sensitivity, policies and the change
//! queue. Every change is one Raft entry carrying its own audit record; those that touch a
//! root of trust wait for an approver (`changes`).

use custos_proto::v1 as pb;
use custos_proto::v1::admin_server::Admin;
use tonic::{Request, Response, Status};

use super::{convert, Services};
use crate::access::{Action, Role, TOKEN_TTL_DEFAULT_MS, TOKEN_TTL_MAX_MS};
use crate::audit::{AuditAction, Outcome};
use crate::meta::{Command, TokenRecord, User};
use crate::retention::Policy;

fn validate_name(what: &str, s: &str) -> Result<(), Status> {
    custos_formats::fields::validate_user_name(what, s).map_err(Status::invalid_argument)
}

impl Services {
    /// A new token for `user` issued by `issued_by`: the secret, its hash and its record.
    fn new_token(&self, user: &str, ttl_days: u32, issued_by: &str) -> Result<(String, [u8; 32], TokenRecord), Status> {
        let ttl_ms = if ttl_days == 0 { TOKEN_TTL_DEFAULT_MS } else { i64::from(ttl_days) * 86_400_000 };
        if ttl_ms > TOKEN_TTL_MAX_MS {
            return Err(Status::invalid_argument("token lifetime may be at most 366 days"));
        }
        Ok(self.new_token_ms(user, ttl_ms, issued_by))
    }
}

/// The reply to a token request that waits for an approver.
fn pending_token(user: String, expires_ms: i64, change_id: u64) -> pb::TokenIssued {
    pb::TokenIssued { user, token_id: String::new(), token: String::new(), expires_ms, change_id }
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
        let (secret, hash, token) = self.new_token(&r.name, r.ttl_days, &caller.who.name)?;
        let expires_ms = token.expires_ms;
        let token_id = token.id.clone();
        let user =
            User { name: r.name.clone(), role, case: case.clone(), disabled: false, grants: vec![], created_ms: 0 };
        let detail =
            format!("user {} role={}{}", r.name, role.as_str(), case.map(|c| format!(" case={c}")).unwrap_or_default());
        let cmd = Command::CreateUser { user, token_hash: hash, token };
        // A role that may view footage or decide waits for an approver, who receives the
        // token; the secret made here is then dropped unseen.
        if let Some(change_id) = self.admin_change(&caller, AuditAction::UserAdd, detail, cmd).await? {
            return Ok(Response::new(pending_token(r.name, expires_ms, change_id)));
        }
        Ok(Response::new(pb::TokenIssued { user: r.name, token_id, token: secret, expires_ms, change_id: 0 }))
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
        self.admin_change(&caller, AuditAction::UserDisable, format!("user {name}"), Command::DisableUser { name })
            .await?;
        Ok(Response::new(pb::DisableUserResponse {}))
    }

    async fn issue_token(&self, req: Request<pb::IssueTokenRequest>) -> Result<Response<pb::TokenIssued>, Status> {
        // Renewing one's own token is for everyone; a token for someone else is an
        // administrator's request that waits for an approver.
        let caller = self.authenticate(&req, Action::RenewToken).await?;
        let own = req.get_ref().user == caller.who.name;
        self.authorize_caller(&caller, if own { Action::RenewToken } else { Action::ManageUsers }, false).await?;
        let r = req.into_inner();
        validate_name("user name", &r.user)?;
        let (secret, hash, token) = self.new_token(&r.user, r.ttl_days, &caller.who.name)?;
        let (expires_ms, token_id) = (token.expires_ms, token.id.clone());
        if own {
            let mut ev = caller.event(AuditAction::TokenRenew, Outcome::Ok);
            ev.detail = format!("token {token_id} for {} (renewed with token {})", r.user, caller.token_id);
            if let crate::meta::Response::Rejected(kind, why) =
                self.meta.propose_audited(Command::IssueToken { token_hash: hash, token }, ev).await?
            {
                return Err(super::rejected(kind, why));
            }
            return Ok(Response::new(pb::TokenIssued {
                user: r.user,
                token_id,
                token: secret,
                expires_ms,
                change_id: 0,
            }));
        }
        let detail = format!("new token for {}", r.user);
        let cmd = Command::IssueToken { token_hash: hash, token };
        match self.admin_change(&caller, AuditAction::TokenIssue, detail, cmd).await? {
            Some(change_id) => Ok(Response::new(pending_token(r.user, expires_ms, change_id))),
            None => Err(Status::internal("a token for another user was issued without an approver")),
        }
    }

    async fn reset_password(
        &self,
        req: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::TokenIssued>, Status> {
        let caller = self.guard(&req, Action::ManageUsers, false).await?;
        let user = req.into_inner().user;
        validate_name("user name", &user)?;
        // The secret made here is dropped unseen: the approver's node makes the one used.
        let (_, hash, token) = self.new_token(&user, 0, &caller.who.name)?;
        let expires_ms = token.expires_ms;
        let detail = format!("console password of {user} cleared; a new enrolment token for them");
        let cmd = Command::ResetPassword { user: user.clone(), token_hash: hash, token };
        match self.admin_change(&caller, AuditAction::PasswordReset, detail, cmd).await? {
            Some(change_id) => Ok(Response::new(pending_token(user, expires_ms, change_id))),
            None => Err(Status::internal("a password reset took effect without an approver")),
        }
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
        self.admin_change(&caller, AuditAction::TokenRevoke, format!("token {id}"), Command::RevokeToken { id })
            .await?;
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
        let cmd = Command::GrantCamera { user: r.user, camera: r.camera, grant: r.grant };
        let change_id = self.admin_change(&caller, AuditAction::CameraGrant, detail, cmd).await?.unwrap_or(0);
        Ok(Response::new(pb::GrantCameraResponse { change_id }))
    }

    async fn set_camera_sensitive(
        &self,
        req: Request<pb::SetCameraSensitiveRequest>,
    ) -> Result<Response<pb::SetCameraSensitiveResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let r = req.into_inner();
        crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
        let detail = format!("camera {} sensitive={}", r.camera, r.sensitive);
        let cmd = Command::SetSensitive { camera: r.camera, sensitive: r.sensitive };
        let change_id = self.admin_change(&caller, AuditAction::CameraSensitive, detail, cmd).await?.unwrap_or(0);
        Ok(Response::new(pb::SetCameraSensitiveResponse { change_id }))
    }

    async fn set_camera_standby(
        &self,
        req: Request<pb::SetCameraStandbyRequest>,
    ) -> Result<Response<pb::SetCameraStandbyResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let r = req.into_inner();
        crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
        self.set_standby(&caller, &r.camera, r.standby, false).await?;
        Ok(Response::new(pb::SetCameraStandbyResponse {}))
    }

    async fn set_privacy_zones(
        &self,
        req: Request<pb::SetPrivacyZonesRequest>,
    ) -> Result<Response<pb::SetPrivacyZonesResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let r = req.into_inner();
        crate::ingest::validate_camera_id(&r.camera).map_err(Status::invalid_argument)?;
        let zones = r.zones.iter().map(|z| crate::zones::Zone::parse(z)).collect::<Result<Vec<_>, _>>();
        let zones = zones.map_err(Status::invalid_argument)?;
        crate::zones::validate_all(&zones).map_err(Status::invalid_argument)?;
        let listed: Vec<String> = zones.iter().map(|z| format!("[{z}]")).collect();
        let detail = format!(
            "camera {} privacy zones: {}",
            r.camera,
            if listed.is_empty() { "none".into() } else { listed.join(" ") }
        );
        let cmd = Command::SetPrivacyZones { camera: r.camera, zones };
        let change_id = self.admin_change(&caller, AuditAction::CameraPrivacyZones, detail, cmd).await?.unwrap_or(0);
        Ok(Response::new(pb::SetPrivacyZonesResponse { change_id }))
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
        let cmd = Command::SetPolicy { camera, policy };
        let change_id = self.admin_change(&caller, AuditAction::PolicySet, detail, cmd).await?.unwrap_or(0);
        Ok(Response::new(pb::SetPolicyResponse { change_id }))
    }

    async fn list_changes(
        &self,
        req: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        self.guard(&req, Action::ViewChanges, false).await?;
        Ok(Response::new(self.list_changes_for(req.get_ref().all).await?))
    }

    async fn get_change(&self, req: Request<pb::GetChangeRequest>) -> Result<Response<pb::Change>, Status> {
        self.guard(&req, Action::ViewChanges, false).await?;
        Ok(Response::new(self.get_change_by_id(req.get_ref().id).await?))
    }

    async fn decide_change(
        &self,
        req: Request<pb::DecideChangeRequest>,
    ) -> Result<Response<pb::ChangeDecided>, Status> {
        let caller = self.guard(&req, Action::DecideChange, false).await?;
        Ok(Response::new(self.decide_change_as(&caller, req.into_inner()).await?))
    }
}
