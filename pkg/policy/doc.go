// Package policy implements the Pomerium Policy Language (PPL): it parses
// PPL documents from YAML into a typed AST (Parse, ParseYAML), compiles
// them together with a route's shorthand options into an Evaluator
// (Compile), and evaluates requests against it (Evaluator.Evaluate).
//
// Compilation happens once, when the configuration is loaded: every
// criterion and matcher becomes a Go closure with its constants
// pre-processed (parsed CIDR ranges, loaded time zones, hashed sets for long
// `in` lists). Evaluation walks those closures only; it does not interpret
// YAML, does not run Rego and does not allocate.
//
// Semantics follow Pomerium:
//
//   - String matchers compare exactly, case included, for every criterion
//     (email, domain and http_method too), as Pomerium's Rego does.
//   - A policy is a rule object or a list of rule objects; each rule has an
//     `allow` and/or a `deny` action; each action holds logical operators
//     `and` (all true), `or` (any true), `not` (none true, ¬A ∧ ¬B) and
//     `nor` (not all true, ¬A ∨ ¬B), each a list of one-key criteria.
//   - Every operator of every allow rule (and the route shorthands) is one
//     term; the allow result is the `or` of those terms. Likewise for deny.
//   - Reasons merge as Pomerium merges them: `and`/`or` keep the reasons of
//     the members that share the result's value; `not`/`nor` invert each
//     member first and then merge like `and`/`or`.
//   - A criterion that needs a user is false for a request without a
//     session, with the reason user-unauthenticated. When either the allow
//     or the deny result carries user-unauthenticated, the request must
//     sign in (Decision.NeedsSignIn), exactly as Pomerium's authorize
//     service redirects to sign-in in that case. Otherwise deny wins over
//     allow, and no matching allow means deny.
package policy
