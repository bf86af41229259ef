//! The request context: everything a policy can look at for one authorization question.

use std::borrow::Cow;

/// The value of one condition key in a request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single-valued key such as `aws:username` or `dynamodb:Select`.
    Single(String),
    /// A multivalued key such as `dynamodb:LeadingKeys` or `dynamodb:Attributes`. An empty list
    /// is a key that is present with no values (which IAM calls a null data set).
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice-like iterator: one for `Single`, all of them for `Multi`.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (single, multi): (Option<&str>, &[String]) = match self {
            ContextValue::Single(s) => (Some(s.as_str()), &[]),
            ContextValue::Multi(v) => (None, v.as_slice()),
        };
        single.into_iter().chain(multi.iter().map(String::as_str))
    }

    /// True for a multivalued key with no values.
    pub fn is_empty(&self) -> bool {
        matches!(self, ContextValue::Multi(v) if v.is_empty())
    }
}

/// Everything a policy can look at for one authorization question.
///
/// Condition keys are case-insensitive (`aws:SourceIp` and `AWS:sourceip` are the same key).
/// `aws:PrincipalArn` and `aws:PrincipalAccount` default to `principal_arn` and
/// `principal_account` unless set explicitly.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The action asked for, e.g. `dynamodb:GetItem`.
    pub action: String,
    /// The ARN of the resource acted on, e.g. `arn:aws:dynamodb:us-east-1:000000000000:table/Books`.
    pub resource: String,
    /// The ARN of the caller, e.g. `arn:aws:iam::000000000000:user/reporting`.
    pub principal_arn: String,
    /// The caller's account id, e.g. `000000000000`.
    pub principal_account: String,
    /// Keys in lowercase. A short list searched in order beats hashing for the dozen keys a
    /// request has.
    keys: Vec<(Cow<'static, str>, ContextValue)>,
}

/// The condition keys a server sets on every request, in lowercase: stored without allocating.
const WELL_KNOWN_KEYS: [&str; 12] = [
    "aws:username",
    "aws:userid",
    "aws:principaltype",
    "aws:sourceip",
    "aws:securetransport",
    "aws:epochtime",
    "aws:currenttime",
    "dynamodb:leadingkeys",
    "dynamodb:attributes",
    "dynamodb:select",
    "dynamodb:returnvalues",
    "dynamodb:returnconsumedcapacity",
];

/// `key` in lowercase, borrowed from [`WELL_KNOWN_KEYS`] when it is one of them.
fn lowercase_key(key: &str) -> Cow<'static, str> {
    match WELL_KNOWN_KEYS
        .iter()
        .find(|k| k.len() == key.len() && k.eq_ignore_ascii_case(key))
    {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(key.to_ascii_lowercase()),
    }
}

impl RequestContext {
    /// A context with no condition keys yet.
    pub fn new(
        action: impl Into<String>,
        resource: impl Into<String>,
        principal_arn: impl Into<String>,
        principal_account: impl Into<String>,
    ) -> RequestContext {
        RequestContext {
            action: action.into(),
            resource: resource.into(),
            principal_arn: principal_arn.into(),
            principal_account: principal_account.into(),
            keys: Vec::with_capacity(12),
        }
    }

    /// Sets a single-valued condition key, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut RequestContext {
        self.insert(lowercase_key(key), ContextValue::Single(value.into()));
        self
    }

    /// Sets a multivalued condition key, replacing any earlier value. An empty list makes the
    /// key present with no values.
    pub fn set_multi<I, S>(&mut self, key: &str, values: I) -> &mut RequestContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.insert(lowercase_key(key), ContextValue::Multi(values));
        self
    }

    /// Builder form of [`RequestContext::set`].
    pub fn with(mut self, key: &str, value: impl Into<String>) -> RequestContext {
        self.set(key, value);
        self
    }

    /// Builder form of [`RequestContext::set_multi`].
    pub fn with_multi<I, S>(mut self, key: &str, values: I) -> RequestContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set_multi(key, values);
        self
    }

    /// Removes a condition key; returns its value if it was set.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        let key = key.to_ascii_lowercase();
        let at = self.keys.iter().position(|(k, _)| *k == key)?;
        Some(self.keys.swap_remove(at).1)
    }

    fn insert(&mut self, key: Cow<'static, str>, value: ContextValue) {
        match self.keys.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key, value)),
        }
    }

    /// The value of a condition key, whatever the case of `key`.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.get_lower(&key.to_ascii_lowercase())
        } else {
            self.get_lower(key)
        }
    }

    /// Lookup of a key already in lowercase (as the parser stores them): no allocation.
    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of a key as one string, for policy variables: a multivalued key (or an absent
    /// one) has none. `aws:PrincipalArn` and `aws:PrincipalAccount` fall back to the fields.
    pub(crate) fn single_lower(&self, key: &str) -> Option<&str> {
        match self.get_lower(key) {
            Some(ContextValue::Single(s)) => Some(s),
            Some(ContextValue::Multi(_)) => None,
            None => self.implicit(key),
        }
    }

    /// Keys derived from the fixed fields unless set explicitly.
    pub(crate) fn implicit(&self, key: &str) -> Option<&str> {
        match key {
            "aws:principalarn" if !self.principal_arn.is_empty() => Some(&self.principal_arn),
            "aws:principalaccount" if !self.principal_account.is_empty() => {
                Some(&self.principal_account)
            }
            _ => None,
        }
    }
}
