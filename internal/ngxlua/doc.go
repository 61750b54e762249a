package ngxlua

// API coverage (ngx_lua names; docs/lua.md is the user-facing list, with
// the differences from ngx_lua):
//
// Output/flow: ngx.say, ngx.print, ngx.flush, ngx.eof, ngx.exit,
// ngx.redirect, ngx.exec, ngx.send_headers, ngx.status, ngx.header,
// ngx.headers_sent, ngx.is_subrequest, ngx.get_phase, ngx.arg (body_filter,
// set_by_lua), ngx.var, ngx.ctx, ngx.log, print, ngx.null, all ngx.*
// constants (OK/ERROR/AGAIN/DONE/DECLINED, HTTP_* statuses and methods, log
// levels), ngx.config.*, ngx.worker.*.
//
// ngx.req: get_method, set_method, http_version, start_time, is_internal,
// get_uri_args, set_uri_args, set_uri (with jump), get_headers (raw,
// max_headers, normalising __index), set_header, clear_header, read_body,
// discard_body, get_body_data, get_body_file (always nil), get_post_args.
//
// ngx.location.capture / capture_multi (options: method, body, args,
// always_forward_body).
//
// ngx.shared.DICT: get, get_stale, set, safe_set, add, safe_add, replace,
// delete, incr (init, init_ttl), ttl, expire, flush_all, flush_expired,
// get_keys, capacity, free_space, lpush, rpush, lpop, rpop, llen.
//
// Time: ngx.now, time, update_time, today, localtime, utctime, http_time,
// cookie_time, parse_http_time, sleep; ngx.timer.at, every, running_count,
// pending_count.
//
// Encoding: ngx.md5, md5_bin, sha1_bin, hmac_sha1, crc32_short, crc32_long,
// encode_base64, decode_base64, escape_uri, unescape_uri, encode_args,
// decode_args, quote_sql_str. ngx.re.match, find, gmatch, sub, gsub, split
// (also require "ngx.re").
//
// Modules: cjson, cjson.safe, ngx.upstream, bit (also global), resty.core
// (no-op). Cosockets: ngx.socket.tcp / ngx.socket.connect with connect
// (host+port or "unix:"), settimeout(s), send, receive ("*l", "*a", n),
// receiveany, receiveuntil (inclusive, sized iterator), setkeepalive,
// getreusedtimes, sslhandshake, setoption (no-op), close.
//
// Not implemented: ngx.req.raw_header, set_body_data/set_body_file,
// init_body/append_body/finish_body, ngx.req.socket, ngx.socket.udp,
// ngx.socket.stream, ngx.thread.*, ngx.on_abort, ngx.semaphore,
// ngx.balancer, ngx.ssl, ngx.process, ngx.pipe, ngx.errlog, ngx.resp.
// add_header, capture options ctx/vars/copy_all_vars/share_all_vars,
// lua_check_client_abort.
