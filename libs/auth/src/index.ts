export * from './principal';
export * from './auth.options';
export * from './route-policy';
export * from './rate-limiter';
export * from './api-key.repository';
export * from './api-key.service';
export * from './auth.hook';
export * from './auth.module';
