package main

import (
	"fmt"
	"strings"
	"time"
)

// config is the service's configuration, read from the environment.
type config struct {
	URLs            []string      // AMQP_URLS, comma-separated; required
	Name            string        // SERVICE_NAME, sent as the connection name; default "orders-service"
	HTTPAddr        string        // HTTP_ADDR; default "127.0.0.1:8080"
	Queue           string        // QUEUE; default "orders"
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT; default 10s
}

func configFromEnv(getenv func(string) string) (config, error) {
	c := config{
		Name:            "orders-service",
		HTTPAddr:        "127.0.0.1:8080",
		Queue:           "orders",
		ShutdownTimeout: 10 * time.Second,
	}
	for _, u := range strings.Split(getenv("AMQP_URLS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.URLs = append(c.URLs, u)
		}
	}
	if len(c.URLs) == 0 {
		return c, fmt.Errorf("AMQP_URLS is required (comma-separated amqp:// URLs)")
	}
	if v := getenv("SERVICE_NAME"); v != "" {
		c.Name = v
	}
	if v := getenv("HTTP_ADDR"); v != "" {
		c.HTTPAddr = v
	}
	if v := getenv("QUEUE"); v != "" {
		c.Queue = v
	}
	if v := getenv("SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("SHUTDOWN_TIMEOUT %q: want a positive duration such as 10s", v)
		}
		c.ShutdownTimeout = d
	}
	return c, nil
}
