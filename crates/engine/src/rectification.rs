//! Rectification (GDPR art. 16): a customer's trait is corrected to the value they give. The
//! correction wins over every event received so far (it is dated now) and is audited; events
//! already stored keep what was sent — they are the record of what was received, and the export
//! shows both.

use consentric_model::{CallType, MessageId};
use serde_json::{json, Value};

use crate::audit;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::profiles::ProfileRef;

impl Engine {
    /// Sets trait `name` of the customer `who` names to `value`, as `actor`. Only a trait the
    /// customer has can be corrected, and only to a value the policy would store.
    ///
    /// # Errors
    /// Not found; [`EngineError::Invalid`] for a trait the customer does not have or one no
    /// schema rule maps; a database fault.
    pub fn rectify(
        &self,
        who: &ProfileRef,
        name: &str,
        value: &Value,
        actor: &str,
    ) -> Result<crate::ProfileView, EngineError> {
        let id = self.find_profile(who)?;
        if self
            .policy
            .schema
            .category(CallType::Identify, None, &["traits", name])
            .is_none()
        {
            return Err(EngineError::Invalid {
                field: format!("traits.{name}"),
                message: "no schema rule maps this trait, so it is not stored".into(),
            });
        }
        let now = self.now().timestamp_millis();
        let mid = MessageId::parse(&format!("rectification-{}", uuid::Uuid::new_v4().simple()))
            .ok_or_else(|| EngineError::Config("generated message id refused".into()))?;
        let known = self.store.write(|tx| -> Result<bool, EngineError> {
            if !tx.traits_of(&id)?.iter().any(|t| t.name == name) {
                return Ok(false);
            }
            tx.set_trait(&id, name, &value.to_string(), now, &mid)?;
            audit::append(
                tx,
                now,
                actor,
                "profile.rectified",
                Some(id.as_str()),
                &json!({"trait": name, "message_id": mid.as_str()}),
            )?;
            Ok(true)
        })?;
        if !known {
            return Err(EngineError::Invalid {
                field: format!("traits.{name}"),
                message: "the customer has no such trait to correct".into(),
            });
        }
        self.profile(&ProfileRef::Profile(id), actor)
    }
}
