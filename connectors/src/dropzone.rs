//! Local drop zones watched with notify.
