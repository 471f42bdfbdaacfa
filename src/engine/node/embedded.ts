import { EngineError } from '../base/errors.js';
import type { Database, OpenDatabaseOptions } from './database-api.js';

/** Opens a data directory as an embedded solo node (no network, cluster of one). */
export function openDatabase(_options: OpenDatabaseOptions): Promise<Database> {
  return Promise.reject(new EngineError('UNAVAILABLE', 'embedded database not built yet'));
}
