package config

import "time"

// Defaults of the reliability options (see Options).
const (
	DefaultShutdownGracePeriod           = 5 * time.Second
	DefaultAuthenticateDataBrokerTimeout = 3 * time.Second
)

// ShutdownGrace returns shutdown_grace_period: how long the process keeps
// accepting after SIGTERM, not ready, before it drains.
func (o *Options) ShutdownGrace() time.Duration {
	if o.ShutdownGracePeriod == nil {
		return DefaultShutdownGracePeriod
	}
	return o.ShutdownGracePeriod.Std()
}

// AuthenticateDataBrokerWait returns authenticate_databroker_timeout: the
// bound of one databroker call made while a browser waits.
func (o *Options) AuthenticateDataBrokerWait() time.Duration {
	if o.AuthenticateDataBrokerTimeout <= 0 {
		return DefaultAuthenticateDataBrokerTimeout
	}
	return o.AuthenticateDataBrokerTimeout.Std()
}
