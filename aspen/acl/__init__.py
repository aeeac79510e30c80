"""ACL users as Redis 7.0: rules and rendering (`rules`), the permission check (`check`),
the replicated user table and the ACL LOG (`state`), the ACL command (`command`)."""
