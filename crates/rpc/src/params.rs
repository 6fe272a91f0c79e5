//! A method's parameters: given by name (an object) or by position (an array, in the order
//! of the method's table entry), read by name with typed readers that say what is wrong.

use serde_json::Value;

use crate::RpcError;

/// Parameters given by name (an object) or by position (an array), read by name.
pub(crate) struct Params {
    value: Value,
    names: &'static [&'static str],
}

impl Params {
    pub(crate) fn new(value: Value, names: &'static [&'static str]) -> Self {
        Self { value, names }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let found = match &self.value {
            Value::Object(map) => map.get(name),
            Value::Array(items) => self.names.iter().position(|n| *n == name).and_then(|i| items.get(i)),
            _ => None,
        };
        found.filter(|v| !v.is_null())
    }

    pub(crate) fn required_str(&self, name: &str) -> Result<&str, RpcError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be a string"))),
            None => Err(RpcError::invalid_params(format!("missing parameter `{name}`"))),
        }
    }

    pub(crate) fn optional_str(&self, name: &str) -> Result<Option<&str>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.required_str(name).map(Some),
        }
    }

    pub(crate) fn optional_bool(&self, name: &str) -> Result<Option<bool>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be true or false"))),
        }
    }

    pub(crate) fn optional_u64(&self, name: &str) -> Result<Option<u64>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be a whole number"))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RpcError> {
        match &self.value {
            Value::Null => Ok(()),
            Value::Object(map) => match map.keys().find(|k| !self.names.contains(&k.as_str())) {
                Some(unknown) => Err(RpcError::invalid_params(format!("unknown parameter `{unknown}`"))),
                None => Ok(()),
            },
            Value::Array(items) if items.len() <= self.names.len() => Ok(()),
            Value::Array(items) => Err(RpcError::invalid_params(format!(
                "expected at most {} parameters, got {}",
                self.names.len(),
                items.len()
            ))),
            _ => Err(RpcError::invalid_params("params must be an object or an array")),
        }
    }
}
