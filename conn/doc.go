// Package conn is warren's connection supervisor over amqp091-go.
package conn
