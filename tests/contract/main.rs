//! Contract tests: connectors through Stoplight Prism (proxy mode, `--errors`) with the official
//! specs from ../shared/contracts/specs, in front of the sandbox.
